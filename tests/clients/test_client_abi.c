/* libdfnet-client.so's ABI (clients/lib/libdfnet-client.map): a program linked against the
 * shared library finds the functions of the installed headers, dfnet/client.h and
 * dfnet/status.h, and none of the library's insides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <string.h>

#include "dfnet/client.h"
#include "dfnet/status.h"

static void *self_lib(void) {
  /* the copy this program was linked with, already loaded */
  Dl_info info;
  assert_true(dladdr((void *)dfnet_client_connect, &info) != 0);
  assert_non_null(strstr(info.dli_fname, "libdfnet-client.so"));
  void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  assert_non_null(h);
  return h;
}

static void test_status_strings_exported(void **state) {
  (void)state;
  assert_string_equal(dfnet_status_str(DFNET_STATUS_NOT_FOUND), "NOT_FOUND");
  assert_string_equal(dfnet_status_str(DFNET_STATUS_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
  assert_non_null(dfnet_status_description(DFNET_STATUS_UNAVAILABLE));
  void *h = self_lib();
  assert_non_null(dlsym(h, "dfnet_status_str"));
  assert_non_null(dlsym(h, "dfnet_client_connect"));
  dlclose(h);
}

/* Every function dfnet/client.h and dfnet/status.h declare (client_api.h, read from the
 * headers): this program links against each (an unexported one fails the link), and the
 * library's dynamic symbol table has each. */
typedef void (*any_fn)(void);
#define X(name) {#name, (any_fn)name},
static const struct {
  const char *name;
  any_fn fn;
} api[] = {
#include "client_api.h"
};
#undef X

static void test_every_declared_function_exported(void **state) {
  (void)state;
  assert_true(sizeof api / sizeof api[0] >= 30);
  void *h = self_lib();
  for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
    void *sym = dlsym(h, api[i].name);
    if (sym == NULL)
      fail_msg("libdfnet-client.so does not export %s, which the headers declare", api[i].name);
    assert_ptr_equal(sym, (void *)api[i].fn);
  }
  dfnet_status_t parsed;
  assert_int_equal(dfnet_status_from_str("UNAVAILABLE", &parsed), DFNET_STATUS_OK);
  assert_int_equal(parsed, DFNET_STATUS_UNAVAILABLE);
  dlclose(h);
}

static void test_insides_hidden(void **state) {
  (void)state;
  void *h = self_lib();
  const char *inside[] = {"dfnet_transport_create", "dfnet_envelope_encode", "lws_create_context",
                          "pb_encode", "dfnet_pki_ca_create"};
  for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++)
    if (dlsym(h, inside[i]) != NULL)
      fail_msg("libdfnet-client.so exports %s", inside[i]);
  dlclose(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_strings_exported),
      cmocka_unit_test(test_every_declared_function_exported),
      cmocka_unit_test(test_insides_hidden),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
