/*
 * sim.h -- the simulation kernel shared by the model and the command-line
 * environment: current time, event counter, the future event set, message
 * accounting (for the "Messages:" status line), the fingerprint, and
 * OMNeT++-style errors, which carry the context they happened in
 * ("-- during network setup", "-- in module (Host) Aloha.host[3] (id=6),
 * at t=5s, event #1234") and unwind the run with longjmp.
 */
#ifndef ALOHA_SIM_H
#define ALOHA_SIM_H

#include <setjmp.h>
#include <stdint.h>

#include "fes.h"
#include "util.h"

enum sim_phase { PH_SETUP, PH_INIT, PH_RUN, PH_FINISH };

typedef struct {
    fes_t fes;
    simtime_t now;
    long long event_num;       /* number of the current (or last) event */
    long long msgs_created;
    long long msgs_present;
    int end_requested;         /* endSimulation() was called */

    int phase;
    const char *ctx_type;      /* module type, e.g. "Host" */
    const char *ctx_path;      /* module full path */
    int ctx_id;

    jmp_buf *on_error;         /* where sim_error() jumps */
    char *error;               /* the formatted error message */
    char **kept;               /* see sim_keep() */
    int nkept;

    int fp_enabled;
    uint32_t fp;               /* FNV-1a over the ingredients of each event */
    char fp_ingredients[16];
} sim_t;

void sim_init(sim_t *s);
void sim_free(sim_t *s);       /* frees the FES array (not the events) */

void sim_schedule(sim_t *s, sim_event *e, simtime_t t);
void sim_cancel(sim_t *s, sim_event *e);
void sim_end_simulation(sim_t *s);

/* The module on whose behalf the kernel is working (for error messages). */
void sim_enter_module(sim_t *s, const char *type, const char *path, int id);

NORETURN void sim_error(sim_t *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Keeps p until sim_free(): for strings formatted into an error message,
 * since sim_error() does not return. */
char *sim_keep(sim_t *s, char *p);

/* Fingerprint: called by the event loop for every event. */
void sim_fingerprint_event(sim_t *s, const sim_event *e);
/* "1b31-f887" style text of the current fingerprint (without ingredients). */
void sim_fingerprint_str(const sim_t *s, char buf[16]);

#endif
