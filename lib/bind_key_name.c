/* A property key as a person writes it (bind_key_name.h): a deprecated key by its name, or
 * a string key. */
#include "lib/bind_key_name.h"

#include <stdio.h>
#include <string.h>

#include "dfnet/bind_keys.h"
#include "lib/suggest.h"

#define DEPRECATED_PREFIX "fuchsia.BIND_"

/* 0 says "a string key": no deprecated key is 0 (Fuchsia's table starts at BIND_PROTOCOL). */
#define NOT_ZERO_(name, value) _Static_assert((value) != 0, "fuchsia." #name " is 0");
DFNET_BIND_KEYS_MAP(NOT_ZERO_)
#undef NOT_ZERO_

bool dfnet_bind_key_name_resolve(const char *key, uint32_t *int_key, char *why, size_t cap) {
  if (strncmp(key, DEPRECATED_PREFIX, strlen(DEPRECATED_PREFIX)) != 0) {
    *int_key = 0;
    return true;
  }
  if (dfnet_bind_key_from_name(key, int_key))
    return true;
  dfnet_suggest_t s;
  dfnet_suggest_init(&s, key);
  size_t count = 0;
  const dfnet_bind_key_entry_t *keys = dfnet_bind_keys(&count);
  for (size_t i = 0; i < count; i++)
    dfnet_suggest_offer(&s, keys[i].name);
  const char *best = dfnet_suggest_best(&s);
  snprintf(why, cap, "%s is not a deprecated key of fuchsia%s%s%s", key,
           best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
  return false;
}
