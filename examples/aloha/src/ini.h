/*
 * ini.h -- reading OMNeT++-style ini files: [General] and [Config NAME]
 * sections, "key = value" lines, '#' comments (outside string literals),
 * backslash line continuation and "include FILE" directives (relative to
 * the including file). Values are kept raw; iteration variables are
 * handled in config.c.
 */
#ifndef ALOHA_INI_H
#define ALOHA_INI_H

typedef struct {
    char *key;
    char *value;     /* raw, trimmed, comment removed */
    char *file;      /* file it came from (for messages) */
    int line;
} ini_entry;

typedef struct {
    char *name;      /* "General" or the config name */
    ini_entry *entries;
    int n, cap;
} ini_section;

typedef struct {
    char *path;      /* main ini file as given on the command line */
    char *dir;       /* its directory ("." for a bare name) */
    ini_section *sections;
    int n, cap;
} ini_file;

/* Returns 0 on success, else -1 with *err set to a malloc'd message. */
int ini_load(ini_file *ini, const char *path, char **err);
void ini_free(ini_file *ini);
ini_section *ini_find_section(ini_file *ini, const char *name);

#endif
