/* dfnet status codes: the 17 gRPC status codes, with gRPC's numbers.
 *
 * Source: gRPC "Status codes and their use" (doc/statuscodes.md); docs/design.md "The wire".
 * One X-macro table generates the enum and the strings, so they never drift. The numbers
 * equal proto/dfnet/v1/status.proto's Code (checked at compile time in lib/envelope.c) and
 * are never renumbered. 0 is OK; every other value is an error.
 */
#ifndef DFNET_STATUS_H
#define DFNET_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) */
#define DFNET_STATUS_MAP(X)                                                            \
  X(OK, 0, "success")                                                                  \
  X(CANCELLED, 1, "the operation was cancelled, typically by the caller")              \
  X(UNKNOWN, 2, "unknown error")                                                       \
  X(INVALID_ARGUMENT, 3, "the caller gave an invalid argument")                        \
  X(DEADLINE_EXCEEDED, 4, "the deadline expired before the operation completed")       \
  X(NOT_FOUND, 5, "the requested entity was not found")                                \
  X(ALREADY_EXISTS, 6, "the entity the caller tried to create already exists")         \
  X(PERMISSION_DENIED, 7, "the caller may not perform this operation")                 \
  X(RESOURCE_EXHAUSTED, 8, "a resource or bound has been exhausted")                   \
  X(FAILED_PRECONDITION, 9, "the system is not in a state required for the operation") \
  X(ABORTED, 10, "the operation was aborted")                                          \
  X(OUT_OF_RANGE, 11, "the operation was attempted past the valid range")              \
  X(UNIMPLEMENTED, 12, "the operation is not implemented or not supported")            \
  X(INTERNAL, 13, "internal error")                                                    \
  X(UNAVAILABLE, 14, "the service is currently unavailable")                           \
  X(DATA_LOSS, 15, "unrecoverable data loss or corruption")                            \
  X(UNAUTHENTICATED, 16, "the request does not have valid authentication credentials")

typedef enum dfnet_status {
#define DFNET_STATUS_ENUM_(name, value, desc) DFNET_STATUS_##name = value,
  DFNET_STATUS_MAP(DFNET_STATUS_ENUM_)
#undef DFNET_STATUS_ENUM_
} dfnet_status_t;

/* Number of status codes (17). Valid codes are 0 .. DFNET_STATUS_COUNT - 1. */
#define DFNET_STATUS_COUNT 17

/* The code's name as gRPC spells it ("OK", "UNAVAILABLE", ...).
 * Returns a static string; "UNKNOWN_STATUS" for a value outside the table. Never NULL. */
const char *dfnet_status_str(dfnet_status_t status);

/* A one-sentence description of the code (static string, never NULL). */
const char *dfnet_status_description(dfnet_status_t status);

/* Parse a code's name as dfnet_status_str() spells it ("NOT_FOUND", case-sensitive) into
 * *out. Any thread; nothing is allocated.
 * Returns OK (and sets *out); INVALID_ARGUMENT when name is NULL or not one of the 17
 * names (*out untouched). */
dfnet_status_t dfnet_status_from_str(const char *name, dfnet_status_t *out);

#ifdef __cplusplus
}
#endif
#endif /* DFNET_STATUS_H */
