/* dfnet-manager: class paths, "class/<class>/<NNN>" (docs/spec/dfv2.md "devfs"), stable per
 * node moniker.
 *
 * A node with a class name gets a number in its class. The manager remembers which number
 * each moniker had (a reservation) and gives the same one back when a node with that
 * moniker appears in that class again: after an agent restart, a host reconnect, a driver
 * restart or a hot-plug of the same port, `class/rng/000` stays `class/rng/000`, as
 * udev's persistent names do; scripts and CI jobs can hard-code it. A moniker seen for the
 * first time takes the lowest number that no live node holds and no other moniker has
 * reserved. Each class keeps at most CLASS_PATHS_RESERVED_MAX reservations; past that,
 * the oldest reservation of a number no live node holds is forgotten. Reservations last
 * as long as the manager process.
 *
 * Lookups by path are O(1). Loop thread only (the manager's one event loop); nothing is
 * locked. A holder is a borrowed topology node: topology.c releases its number before it
 * frees the node.
 */
#ifndef DFNET_MANAGER_CLASS_PATHS_H
#define DFNET_MANAGER_CLASS_PATHS_H

#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

#define CLASS_PATHS_RESERVED_MAX 4096 /* reservations kept per class */
#define CLASS_PATHS_NUMBER_MAX 999999 /* numbers per class */

typedef struct class_paths class_paths_t; /* all classes; NULL = none yet */
struct topology_node;

/* Give `node` (moniker `moniker`) a number in class `class_name` (a valid class name:
 * topology.c checks it) and record it as the number's holder. *cp is created on first use.
 * Returns OK and *number; RESOURCE_EXHAUSTED when out of memory or every number of the
 * class is taken; ALREADY_EXISTS when the moniker's reserved number is held by another
 * live node (a second node with the same moniker: topology.c never lets that happen). */
dfnet_status_t class_paths__assign(class_paths_t **cp, const char *class_name, const char *moniker,
                                   struct topology_node *node, uint32_t *number)
    __attribute__((warn_unused_result));

/* The number is free again (its node goes); the moniker keeps its reservation. */
void class_paths__release(class_paths_t *cp, const char *class_name, uint32_t number);

/* The node holding class/<class_name>/<number>, or NULL. class_name need not be
 * NUL-terminated: its first class_len bytes are the name. */
struct topology_node *class_paths__find(const class_paths_t *cp, const char *class_name,
                                        size_t class_len, uint32_t number);

/* Free every class and reservation (the manager stops). *cp becomes NULL. */
void class_paths__destroy(class_paths_t **cp);

#endif /* DFNET_MANAGER_CLASS_PATHS_H */
