/* The one conversion between the forms of a node property (property.h). */
#include "lib/property.h"

#include <string.h>

/* The value types: one row per DFv2 NodePropertyValue type, one column per form. A type
 * is converted by finding its row in the column of its form. */
enum { BIND, DRIVER, CLIENT, WIRE, RULE, FORMS };
#define TYPES 4
static const unsigned types[TYPES][FORMS] = {
    {DFNET_BIND_VALUE_UINT, DFNET_PROPERTY_UINT, DFNET_CLIENT_VALUE_INT,
     dfnet_v1_NodeProperty_int_value_tag, dfnet_v1_PropertyValue_int_value_tag},
    {DFNET_BIND_VALUE_STRING, DFNET_PROPERTY_STRING, DFNET_CLIENT_VALUE_STRING,
     dfnet_v1_NodeProperty_str_value_tag, dfnet_v1_PropertyValue_str_value_tag},
    {DFNET_BIND_VALUE_BOOL, DFNET_PROPERTY_BOOL, DFNET_CLIENT_VALUE_BOOL,
     dfnet_v1_NodeProperty_bool_value_tag, dfnet_v1_PropertyValue_bool_value_tag},
    {DFNET_BIND_VALUE_ENUM, DFNET_PROPERTY_ENUM, DFNET_CLIENT_VALUE_ENUM,
     dfnet_v1_NodeProperty_enum_value_tag, dfnet_v1_PropertyValue_enum_value_tag},
};

/* Every form has the table's four types, numbered one after the other (none renumbered:
 * the driver's and the client's are ABI). */
_Static_assert(DFNET_BIND_VALUE_ENUM - DFNET_BIND_VALUE_UINT == TYPES - 1, "bind types");
_Static_assert(DFNET_PROPERTY_ENUM - DFNET_PROPERTY_UINT == TYPES - 1, "driver types");
_Static_assert(DFNET_CLIENT_VALUE_ENUM - DFNET_CLIENT_VALUE_INT == TYPES - 1, "client types");
_Static_assert(dfnet_v1_NodeProperty_enum_value_tag - dfnet_v1_NodeProperty_int_value_tag ==
                   TYPES - 1,
               "NodeProperty value tags");
_Static_assert(dfnet_v1_PropertyValue_enum_value_tag - dfnet_v1_PropertyValue_int_value_tag ==
                   TYPES - 1,
               "PropertyValue value tags");
/* "No value" is 0 where a form has it (a zeroed struct has no value), and no type's number
 * in the bind form; the driver form has none, and a zeroed one is UINT 0. */
_Static_assert(DFNET_PROPERTY_NO_VALUE == 0 && DFNET_BIND_VALUE_UINT > 0, "bind: 0 = no value");
_Static_assert(DFNET_CLIENT_VALUE_NONE == 0, "client: 0 = no value");
_Static_assert(DFNET_PROPERTY_UINT == 0, "driver: zeroed = UINT 0");
/* A wire value's strings (STRING or ENUM) share one bound. */
_Static_assert(pb_membersize(dfnet_v1_NodeProperty, value.str_value) ==
                   pb_membersize(dfnet_v1_NodeProperty, value.enum_value),
               "NodeProperty string values");
_Static_assert(pb_membersize(dfnet_v1_PropertyValue, value.str_value) ==
                   pb_membersize(dfnet_v1_PropertyValue, value.enum_value),
               "PropertyValue string values");

/* `type` of form `from` in form `to`; `none` when it is not in the table. */
static unsigned convert(int from, int to, unsigned type, unsigned none) {
  for (int r = 0; r < TYPES; r++)
    if (types[r][from] == type)
      return types[r][to];
  return none;
}

static bool is_text(dfnet_bind_value_type_t type) {
  return type == DFNET_BIND_VALUE_STRING || type == DFNET_BIND_VALUE_ENUM;
}

/* A copy of p with only the field of its type set and int_key 0 for a string key; a type
 * not in the table becomes DFNET_PROPERTY_NO_VALUE. */
static dfnet_bind_property_t clean(const dfnet_bind_property_t *p) {
  dfnet_bind_property_t v = {
      .str_key = p->str_key,
      .int_key = p->str_key != NULL ? 0 : p->int_key,
      .type = convert(BIND, BIND, p->type, DFNET_PROPERTY_NO_VALUE),
  };
  if (v.type == DFNET_BIND_VALUE_UINT)
    v.int_value = p->int_value;
  else if (v.type == DFNET_BIND_VALUE_BOOL)
    v.bool_value = p->bool_value;
  else if (is_text(v.type))
    v.str_value = p->str_value;
  return v;
}

/* Copy s (NULL as "") into dst[cap], cut to fit. Returns false when it was cut. */
static bool copy_cut(char *dst, size_t cap, const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;
  bool fits = n < cap;
  if (!fits)
    n = cap - 1;
  if (n > 0)
    memcpy(dst, s, n);
  dst[n] = '\0';
  return fits;
}

/* A wire value (a oneof case `which` of form `form`, and its union `u`, whose members all
 * start at its first byte) into out's value. Returns false when there is none. */
static bool value_from_wire(int form, pb_size_t which, const void *u, dfnet_bind_property_t *out) {
  out->type = convert(form, BIND, which, DFNET_PROPERTY_NO_VALUE);
  if (out->type == DFNET_BIND_VALUE_UINT)
    out->int_value = *(const uint32_t *)u;
  else if (out->type == DFNET_BIND_VALUE_BOOL)
    out->bool_value = *(const bool *)u;
  else if (is_text(out->type))
    out->str_value = u;
  return out->type != DFNET_PROPERTY_NO_VALUE;
}

/* p's value into a wire value of form `form` (its case, its union, the bound of its
 * strings). */
static dfnet_property_wire_fault_t value_to_wire(int form, const dfnet_bind_property_t *p,
                                                 pb_size_t *which, void *u, size_t cap) {
  dfnet_bind_property_t v = clean(p);
  *which = (pb_size_t)convert(BIND, form, v.type, 0);
  if (v.type == DFNET_BIND_VALUE_UINT)
    *(uint32_t *)u = v.int_value;
  else if (v.type == DFNET_BIND_VALUE_BOOL)
    *(bool *)u = v.bool_value;
  else if (is_text(v.type))
    return copy_cut(u, cap, v.str_value) ? DFNET_PROPERTY_WIRE_OK : DFNET_PROPERTY_WIRE_VALUE_CUT;
  else
    return DFNET_PROPERTY_WIRE_NO_VALUE;
  return DFNET_PROPERTY_WIRE_OK;
}

bool dfnet_property_from_wire(const dfnet_v1_NodeProperty *w, dfnet_bind_property_t *out) {
  memset(out, 0, sizeof *out);
  if (w->which_key == dfnet_v1_NodeProperty_str_key_tag)
    out->str_key = w->key.str_key;
  else
    out->int_key = w->key.int_key;
  return value_from_wire(WIRE, w->which_value, &w->value, out);
}

bool dfnet_property_value_from_wire(const dfnet_v1_PropertyValue *w, dfnet_bind_property_t *out) {
  memset(out, 0, sizeof *out);
  return value_from_wire(RULE, w->which_value, &w->value, out);
}

dfnet_property_wire_fault_t dfnet_property_to_wire(const dfnet_bind_property_t *p,
                                                   dfnet_v1_NodeProperty *out) {
  memset(out, 0, sizeof *out);
  bool key_fits = true;
  if (p->str_key != NULL) {
    out->which_key = dfnet_v1_NodeProperty_str_key_tag;
    key_fits = copy_cut(out->key.str_key, sizeof out->key.str_key, p->str_key);
  } else {
    out->which_key = dfnet_v1_NodeProperty_int_key_tag;
    out->key.int_key = p->int_key;
  }
  dfnet_property_wire_fault_t f =
      value_to_wire(WIRE, p, &out->which_value, &out->value, sizeof out->value.str_value);
  return key_fits ? f : DFNET_PROPERTY_WIRE_KEY_CUT;
}

dfnet_property_wire_fault_t dfnet_property_value_to_wire(const dfnet_bind_property_t *p,
                                                         dfnet_v1_PropertyValue *out) {
  memset(out, 0, sizeof *out);
  return value_to_wire(RULE, p, &out->which_value, &out->value, sizeof out->value.str_value);
}

/* The members the bind, driver and client forms share, by each form's name for it (the type
 * is converted by the table above). */
#define MEMBERS(X)                      \
  X(int_key, int_key, int_key)          \
  X(str_key, str_key, str_key)          \
  X(int_value, value_uint, int_value)   \
  X(bool_value, value_bool, bool_value) \
  X(str_value, value_str, str_value)
#define BIND_TO_DRIVER(bind, driver, client) .driver = v.bind,
#define BIND_TO_CLIENT(bind, driver, client) .client = v.bind,
#define DRIVER_TO_BIND(bind, driver, client) .bind = p->driver,
#define CLIENT_TO_BIND(bind, driver, client) .bind = p->client,

void dfnet_property_to_driver(const dfnet_bind_property_t *p, dfnet_node_property_t *out) {
  dfnet_bind_property_t v = clean(p);
  *out = (dfnet_node_property_t){.type = convert(BIND, DRIVER, v.type, DFNET_PROPERTY_UINT),
                                 MEMBERS(BIND_TO_DRIVER)};
}

void dfnet_property_to_client(const dfnet_bind_property_t *p, dfnet_client_property_t *out) {
  dfnet_bind_property_t v = clean(p);
  *out = (dfnet_client_property_t){.type = convert(BIND, CLIENT, v.type, DFNET_CLIENT_VALUE_NONE),
                                   MEMBERS(BIND_TO_CLIENT)};
}

void dfnet_property_from_driver(const dfnet_node_property_t *p, dfnet_bind_property_t *out) {
  *out = clean(&(dfnet_bind_property_t){
      .type = convert(DRIVER, BIND, p->type, DFNET_PROPERTY_NO_VALUE), MEMBERS(DRIVER_TO_BIND)});
}

void dfnet_property_from_client(const dfnet_client_property_t *p, dfnet_bind_property_t *out) {
  *out = clean(&(dfnet_bind_property_t){
      .type = convert(CLIENT, BIND, p->type, DFNET_PROPERTY_NO_VALUE), MEMBERS(CLIENT_TO_BIND)});
}
