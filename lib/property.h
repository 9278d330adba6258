/* The one conversion between the four forms of a DFv2 node property (docs/style.md 16):
 *
 *   wire    dfnet_v1_NodeProperty (proto/dfnet/v1/node.proto), and a bind rule's value
 *           alone, dfnet_v1_PropertyValue (query.proto): strings inside, bounded by the
 *           .options;
 *   bind    dfnet_bind_property_t (include/dfnet/bind.h): what the matcher reads, and the
 *           form the others convert through;
 *   driver  dfnet_node_property_t (include/dfnet/driver.h): what a driver reads;
 *   client  dfnet_client_property_t (include/dfnet/client.h): what a client gives and reads.
 *
 * The value types are numbered differently in each (driver UINT = 0, bind UINT = 1, client
 * NONE = 0 and INT = 1, the wire by oneof tag) and the driver's and the client's are ABI,
 * so none is renumbered: one table in property.c maps them, checked at compile time.
 *
 * Strings are never copied except into the wire: a property converted from the wire, or
 * between the bind, driver and client forms, borrows the strings of its source, which must
 * outlive it. A value that is none of the four types (a wire value not set, a client value
 * NONE, an unknown type) becomes "no value": bind type DFNET_PROPERTY_NO_VALUE, client
 * NONE, wire which_value 0; the driver form, which has no such type, gets UINT 0. Only the
 * field of the value's type is set; the others are 0 / false / NULL.
 *
 * Pure functions, any thread; nothing allocates.
 */
#ifndef DFNET_LIB_PROPERTY_H
#define DFNET_LIB_PROPERTY_H

#include <stdbool.h>

#include "dfnet/bind.h"
#include "dfnet/client.h"
#include "dfnet/driver.h"
#include "dfnet/v1/node.pb.h"
#include "dfnet/v1/query.pb.h"

/* The bind form's type of a property without a value (never given to the matcher, whose
 * dfnet_bind_node_init refuses it). */
#define DFNET_PROPERTY_NO_VALUE ((dfnet_bind_value_type_t)0)

/* What a conversion to the wire could not carry. */
typedef enum dfnet_property_wire_fault {
  DFNET_PROPERTY_WIRE_OK = 0,
  DFNET_PROPERTY_WIRE_KEY_CUT,   /* the string key is over the wire's bound: cut to it */
  DFNET_PROPERTY_WIRE_VALUE_CUT, /* the string value is over the wire's bound: cut to it */
  DFNET_PROPERTY_WIRE_NO_VALUE,  /* no value (see above): which_value 0 */
} dfnet_property_wire_fault_t;

/* A wire property into *out, strings borrowed from *w. A key that is not a string key is
 * the integer key. Returns false when it has no value (out->type DFNET_PROPERTY_NO_VALUE). */
bool dfnet_property_from_wire(const dfnet_v1_NodeProperty *w, dfnet_bind_property_t *out);

/* A bind rule's value into *out (key 0 / NULL), strings borrowed from *w. Returns false when
 * it has no value. */
bool dfnet_property_value_from_wire(const dfnet_v1_PropertyValue *w, dfnet_bind_property_t *out);

/* *p into the wire form (*out cleared first; strings copied, NULL as ""). A string over the
 * wire's bound is cut to it (NUL-terminated). Returns what could not be carried: the key's
 * fault first, then the value's; DFNET_PROPERTY_WIRE_OK when all of it was. */
dfnet_property_wire_fault_t dfnet_property_to_wire(const dfnet_bind_property_t *p,
                                                   dfnet_v1_NodeProperty *out);

/* p's value alone into a bind rule's value, as dfnet_property_to_wire (never KEY_CUT). */
dfnet_property_wire_fault_t dfnet_property_value_to_wire(const dfnet_bind_property_t *p,
                                                         dfnet_v1_PropertyValue *out);

/* Between the bind form and the driver's and the client's (strings borrowed). */
void dfnet_property_to_driver(const dfnet_bind_property_t *p, dfnet_node_property_t *out);
void dfnet_property_from_driver(const dfnet_node_property_t *p, dfnet_bind_property_t *out);
void dfnet_property_to_client(const dfnet_bind_property_t *p, dfnet_client_property_t *out);
void dfnet_property_from_client(const dfnet_client_property_t *p, dfnet_bind_property_t *out);

#endif /* DFNET_LIB_PROPERTY_H */
