/* The driver host's id tables (runtime.h: dh_host.calls, the calls served for the link;
 * dh_host.outcalls, the calls this host's drivers made on it): records of one type found
 * by their 64-bit id, in DH_ID_TABLE_BUCKETS chains, each record linked by its own `hnext`
 * (T *), with `in_table` set while linked and a reference count `refs` (atomic_int).
 *
 * DH_ID_TABLE(name, T) makes the table type name_t and its functions for records of type
 * T (complete where it is used), static inline: the call path pays no indirection for
 * them. The table's lock is its owner's (dh_host.calls_mu): the *_locked functions run
 * with it held, the others take it. Internal to host/driver_host. */
#ifndef DFNET_HOST_DRIVER_HOST_ID_TABLE_H
#define DFNET_HOST_DRIVER_HOST_ID_TABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <utlist.h>

#define DH_ID_TABLE_BUCKETS 256u

/* The chain of id. */
static inline unsigned dh__id_bucket(uint64_t id) {
  return (unsigned)((id * 0x9E3779B97F4A7C15ull) >> 56) % DH_ID_TABLE_BUCKETS;
}

/* name_t: buckets (the chains; walk them with the lock held), live (records linked).
 * name_find_locked(tab, id): the record of id, or NULL.
 * name_link_locked(tab, r): link r (its id not in the table: the caller checks).
 * name_find_ref(tab, mu, id): the record of id with a reference taken, or NULL.
 * name_remove(tab, mu, r): unlink r when it is linked (idempotent); true when this did,
 *   and the table's reference on r is then the caller's to drop. */
#define DH_ID_TABLE(name, T)                                                          \
  typedef struct name {                                                               \
    T *buckets[DH_ID_TABLE_BUCKETS];                                                  \
    size_t live;                                                                      \
  } name##_t;                                                                         \
                                                                                      \
  static inline T *name##_find_locked(name##_t *tab, uint64_t id) {                   \
    T *r;                                                                             \
    LL_SEARCH_SCALAR2(tab->buckets[dh__id_bucket(id)], r, id, id, hnext);             \
    return r;                                                                         \
  }                                                                                   \
                                                                                      \
  static inline void name##_link_locked(name##_t *tab, T *r) {                        \
    T **chain = &tab->buckets[dh__id_bucket(r->id)];                                  \
    LL_PREPEND2(*chain, r, hnext);                                                    \
    r->in_table = true;                                                               \
    tab->live++;                                                                      \
  }                                                                                   \
                                                                                      \
  static inline T *name##_find_ref(name##_t *tab, pthread_mutex_t *mu, uint64_t id) { \
    pthread_mutex_lock(mu);                                                           \
    T *r = name##_find_locked(tab, id);                                               \
    if (r != NULL)                                                                    \
      atomic_fetch_add(&r->refs, 1);                                                  \
    pthread_mutex_unlock(mu);                                                         \
    return r;                                                                         \
  }                                                                                   \
                                                                                      \
  static inline bool name##_remove(name##_t *tab, pthread_mutex_t *mu, T *r) {        \
    bool removed = false;                                                             \
    pthread_mutex_lock(mu);                                                           \
    if (r->in_table) {                                                                \
      T **chain = &tab->buckets[dh__id_bucket(r->id)];                                \
      LL_DELETE2(*chain, r, hnext); /* r is in its chain: in_table */                 \
      r->in_table = false;                                                            \
      tab->live--;                                                                    \
      removed = true;                                                                 \
    }                                                                                 \
    pthread_mutex_unlock(mu);                                                         \
    return removed;                                                                   \
  }

#endif /* DFNET_HOST_DRIVER_HOST_ID_TABLE_H */
