/*
 * filter.h -- the -r argument: either a run list ("0..3,40-41", "0,1", "5")
 * or a boolean expression over iteration variables
 * ("$numHosts==10 && $iaMean==1", with == != < <= > >= =~ && || ! and
 * parentheses; numbers compare numerically, everything else as strings).
 */
#ifndef ALOHA_FILTER_H
#define ALOHA_FILTER_H

#include "config.h"

/* An empty or NULL filter selects all runs. On success *runs holds *n run
 * numbers (malloc'd) in the order given (a run list) or ascending (an
 * expression); on error returns -1 with *err set. */
int run_filter(const config_t *cfg, const char *filter, int **runs, int *n, char **err);

#endif
