/* dfnet-manager: the node topology (docs/spec/dfv2.md "Nodes", "devfs").
 *
 * Nodes form a DAG keyed by moniker (dot-joined names from the root, e.g.
 * "dev.lab-a.pci.00_05_0"), found by a hash table (uthash). A node has one primary parent
 * (NULL for a host's root "dev.<host>"); a composite node has several parents, and is a
 * child of each. A node's offers are the services its parent's driver offers to it (DFv2
 * AddChild offers: served by the driver bound to the parent, which added the node).
 * Properties (at most TOPOLOGY_PROPS_MAX from the wire, one value per key) are kept in one
 * allocation per node, with a property derived from each of the node's own offers
 * appended ("<service>" = "<service>.DriverTransport", docs/spec/dfv2.md "Nodes"). A
 * composite node has no offers and no properties of its own: what its parents were
 * offered reaches its driver renamed (manager/offers.c).
 * A node with a class name gets the class path class/<class>/<NNN> (class_paths.h): the
 * number a moniker had before when it comes back, else the lowest free one.
 *
 * All of it lives on the manager's one event-loop thread (docs/style.md 7): pointers between
 * nodes are valid within a loop turn; anything kept across turns (a pending DriverStart,
 * a timer, a list stream) refers to a node by moniker + id and looks it up again.
 */
#ifndef DFNET_MANAGER_TOPOLOGY_H
#define DFNET_MANAGER_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uthash.h>

#include "dfnet/bind.h"
#include "dfnet/status.h"
#include "dfnet/v1/node.pb.h"
#include "manager/class_paths.h"

#define TOPOLOGY_PROPS_MAX 64 /* properties a node may be given */
#define TOPOLOGY_OFFERS_MAX 16
#define TOPOLOGY_NAME_MAX 128    /* bytes of one node name */
#define TOPOLOGY_MONIKER_MAX 511 /* bytes of a moniker */
#define TOPOLOGY_CLASS_MAX 31
#define TOPOLOGY_PARENTS_MAX 16 /* parents of a composite node */

/* One node property, in the bind matcher's form so that matching needs no conversion.
 * Strings point into the node's property block. */
typedef dfnet_bind_property_t topology_prop_t;

typedef struct topology_node topology_node_t;

struct topology_node {
  UT_hash_handle hh;                 /* topology.by_moniker */
  uint64_t id;                       /* unique per manager run, never reused */
  char *moniker;                     /* owned */
  uint16_t name_off;                 /* name = moniker + name_off */
  uint8_t prop_count, derived_count; /* derived_count of the props are offer-derived */
  uint8_t offer_count;
  uint8_t parent_count; /* composite nodes: > 1 possible */
  uint8_t state;        /* dfnet_v1_NodeState */
  bool offline;         /* its host's session dropped */
  bool owned;           /* kept by the parent's driver */
  bool starting;        /* a DriverStart is in flight */
  bool stopping;        /* a DriverStop is in flight: no start */
  bool composite;       /* a composite node */
  bool hidden;          /* added while its parent's driver starts: not listed, not bound (yet) */
  bool held;            /* unbound by an admin (UnbindNode): matched again only on RequestBind */
  bool suspended;       /* its driver is suspended (SuspendNode) */
  bool test;            /* a test node (AddTestNode): the manager's only, matched, never started */
  topology_node_t *parents[TOPOLOGY_PARENTS_MAX]; /* [0] = primary parent */
  topology_node_t **children;
  uint32_t child_count;
  size_t child_cap;
  topology_prop_t *props; /* one block with its strings; owned */
  char **offers;          /* offered to this node by its parent's driver; one block; owned */
  char *class_name;       /* owned, NULL when none */
  int32_t class_index;    /* -1 when none */
  uint32_t host_id;       /* the host session record that owns it */
  uint32_t driver_id;     /* driver bound (or starting), 0 = none */
  uint32_t composite_id;  /* composite record this node is the composite node of */
  uint64_t driver_host_id;
  uint32_t driver_host_pid;    /* its driver host's pid (DriverStatus.pid), 0 = not known */
  uint64_t start_request;      /* transport id of the DriverStart in flight */
  uint64_t stop_request;       /* transport id of the DriverStop in flight (stopping) */
  dfnet_status_t unbound_code; /* why unbound: OK = not decided yet */
  char *unbound_msg;           /* owned, NULL when none */
  uint64_t crash_ms[5];        /* monotonic ms of the last crashes (ring) */
  uint8_t crash_count;         /* crashes recorded in crash_ms */
  uint8_t restart_attempt;     /* backoff exponent */
};

typedef struct topology {
  topology_node_t *by_moniker; /* uthash head */
  class_paths_t *classes;      /* class numbers and their reservations */
  uint64_t next_id;
  size_t count;
} topology_t;

/* A node to add, as it came off the wire (borrowed for the call). */
typedef struct topology_add_args {
  const char *name;
  const dfnet_v1_NodeProperty *props;
  size_t prop_count;
  const char (*offers)[128];
  size_t offer_count;
  const char *class_name; /* "" or NULL = none */
  bool owned;
  uint32_t host_id;
} topology_add_args_t;

/* snprintf that cuts silently (for messages: a long moniker or reason is cut, never an
 * error). */
void topology__fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void topology__init(topology_t *t);
/* Free every node (no callbacks). */
void topology__destroy(topology_t *t);

topology_node_t *topology__find(const topology_t *t, const char *moniker);
static inline const char *topology__name(const topology_node_t *n) {
  return n->moniker + n->name_off;
}

/* Is `name` a valid node name (1..128 bytes, no '.', no control characters)?
 * On false, *why (static) says what is wrong. */
bool topology__name_valid(const char *name, const char **why);

/* Check a wire property list: at most TOPOLOGY_PROPS_MAX, every key and value set, no key
 * twice (an integer key and its deprecated string name count as the same key).
 * Returns OK or INVALID_ARGUMENT with the reason in err. */
dfnet_status_t topology__check_props(const dfnet_v1_NodeProperty *props, size_t count, char *err,
                                     size_t err_size);

/* Add a node under `parent` (NULL: a root whose moniker is args->name itself, which may
 * contain dots, e.g. "dev.lab-a"). Copies everything; appends a derived property for each
 * of its own offers (never for its parent's); assigns the class path. State starts UNBOUND
 * (OWNED_BY_PARENT when owned). Errors: INVALID_ARGUMENT (bad name, properties or class; err says
 * why), ALREADY_EXISTS (a sibling with that name), RESOURCE_EXHAUSTED (moniker too long, memory).
 * On OK *out is the node (owned by the topology). */
dfnet_status_t topology__add(topology_t *t, topology_node_t *parent,
                             const topology_add_args_t *args, topology_node_t **out, char *err,
                             size_t err_size);

/* Add a composite node named `name` under every parent (parents[0] primary; its moniker is
 * the primary parent's + "." + name). Errors as topology__add. */
dfnet_status_t topology__add_composite(topology_t *t, topology_node_t *const *parents,
                                       size_t parent_count, const char *name, uint32_t host_id,
                                       topology_node_t **out, char *err, size_t err_size);

/* Replace a node's own properties and offers (NodeUpdate); the derived properties follow
 * the new offers. Errors: INVALID_ARGUMENT as topology__check_props (or too many offers),
 * RESOURCE_EXHAUSTED. */
dfnet_status_t topology__update(topology_t *t, topology_node_t *n,
                                const dfnet_v1_NodeProperty *props, size_t prop_count,
                                const char (*offers)[128], size_t offer_count, char *err,
                                size_t err_size);

/* Unlink a node that has no children from its parents and free it. */
void topology__remove(topology_t *t, topology_node_t *n);

/* Record why a node is unbound (message copied; OK with NULL clears it; OK with a message
 * keeps it: a test node's "would bind URL"). */
void topology__set_unbound(topology_node_t *n, dfnet_status_t code, const char *msg);

/* "class/<class>/<NNN>" into out, or "" when the node has no class. */
void topology__class_path(const topology_node_t *n, char *out, size_t out_size);

/* Find a node by class path "class/<class>/<NNN>" (O(1)), or NULL. */
topology_node_t *topology__find_class_path(const topology_t *t, const char *path);

/* Find a node as a client names it (a call's target, RequestBind, BindWhy, ListNodes
 * exact): a class path when `name` starts with "class/" (no moniker does: every one starts
 * with its host's root "dev.<host>"), else a moniker. NULL when there is none. Inline: the
 * manager resolves every call's target with it. */
static inline topology_node_t *topology__find_named(const topology_t *t, const char *name) {
  return strncmp(name, "class/", 6) == 0 ? topology__find_class_path(t, name)
                                         : topology__find(t, name);
}

/* A driver host as bound nodes name it: their host and its id there (0: not known yet). */
typedef struct topology_driver_host {
  uint32_t host;
  uint64_t id;
} topology_driver_host_t;

/* Sort dh[0..count) by host, then id, for topology__count_driver_hosts(). */
void topology__sort_driver_hosts(topology_driver_host_t *dh, size_t count);

/* How many driver hosts the sorted dh[0..count) name on host `host` (0: on every host; host
 * ids start at 1): each (host, id) once, each unknown one (id 0) on its own. */
uint32_t topology__count_driver_hosts(const topology_driver_host_t *dh, size_t count,
                                      uint32_t host);

/* A property's key as text: the string key, or the deprecated integer key's name
 * ("fuchsia.BIND_PROTOCOL"), or "0x%04x" when unknown. */
const char *topology__prop_key_name(const topology_prop_t *p, char *buf, size_t buf_size);

/* A node's properties (its own, then the derived ones) into out[0..max) in the wire form
 * (lib/property.h; strings copied). Returns how many: at most max. */
size_t topology__props_to_wire(const topology_node_t *n, dfnet_v1_NodeProperty *out, size_t max);

#endif /* DFNET_MANAGER_TOPOLOGY_H */
