/*
 * cmdenv.h -- running simulations the way OMNeT++'s Cmdenv does in express
 * mode: per-run header, status lines, termination message, finish(),
 * result files, console redirection, fingerprint check, and the batch
 * behaviour after a failed run.
 */
#ifndef ALOHA_CMDENV_H
#define ALOHA_CMDENV_H

#include "config.h"

/* Prints the start-up banner (omitted with -s). */
void cmdenv_banner(void);

/* Runs one run of cfg. `index`/`total` place it in the batch (for the
 * "(N% total)" status field). Returns 0 on success, 1 on failure; errors
 * have been reported on stderr. */
int cmdenv_run(const config_t *cfg, int runnumber, int index, int total, int silent);

/* Value of cmdenv-stop-batch-on-error for that run (default true). */
int cmdenv_stop_batch_on_error(const config_t *cfg, int runnumber);

#endif
