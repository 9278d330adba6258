/* board: the driver's context and what its two files share (board.c: start, stop, Power,
 * State; cycle.c: CycleAndWait). Everything here runs on the default dispatcher. */
#ifndef DFNET_DRIVERS_BOARD_BOARD_H
#define DFNET_DRIVERS_BOARD_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/driver.h"

#define BOARD_LINE_MAX 256 /* BoardState.last_line's bound (board.options) */

typedef struct board_cycle board_cycle_t;

/* The driver's context (allocated zeroed by the driver host). */
typedef struct board {
  dfnet_driver_t *driver;
  dfnet_driver_client_t *power;   /* the offer dfnet.hw.power.Power, instance "power" */
  dfnet_driver_client_t *console; /* the offer dfnet.hw.serial.Serial, instance "console" */
  board_cycle_t *cycle;           /* the CycleAndWait running, or NULL */
  uint64_t next_cycle_id;
  bool stopping;                      /* `stop` began: start no call, post no task */
  char last_line[BOARD_LINE_MAX + 1]; /* the last non-empty console line seen */
} board_t;

/* The handler of /dfnet.lab.Board/CycleAndWait (cycle.c). */
void board__cycle_and_wait(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len);

/* In `stop`, once the clients are closed: end the CycleAndWait still waiting to send its
 * last items (UNAVAILABLE) and free it. */
void board__cycle_stop(board_t *b);

/* The deadline to give a call made on behalf of `call`: what is left of its deadline,
 * bounded by `bound_ms` (0: no bound). 0 means none. */
uint32_t board__sub_deadline(const dfnet_call_t *call, uint32_t bound_ms);

/* Append the console bytes p[n] to the tail tail[cap] holding *tail_len bytes, keeping only
 * the last cap bytes of both (*tail_len updated). Any thread; no errors. */
void board__keep_tail(uint8_t *tail, size_t cap, size_t *tail_len, const uint8_t *p, size_t n);

#endif /* DFNET_DRIVERS_BOARD_BOARD_H */
