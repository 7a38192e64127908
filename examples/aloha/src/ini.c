#include "ini.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_INCLUDE_DEPTH 16

static ini_section *add_section(ini_file *ini, const char *name)
{
    ini_section *s;
    if (ini->n == ini->cap) {
        ini->cap = ini->cap ? 2 * ini->cap : 8;
        ini->sections = xrealloc(ini->sections, (size_t)ini->cap * sizeof *ini->sections);
    }
    s = &ini->sections[ini->n++];
    s->name = xstrdup(name);
    s->entries = NULL;
    s->n = s->cap = 0;
    return s;
}

ini_section *ini_find_section(ini_file *ini, const char *name)
{
    int i;
    for (i = 0; i < ini->n; i++)
        if (!strcmp(ini->sections[i].name, name))
            return &ini->sections[i];
    return NULL;
}

/* Cuts a '#' comment that is not inside a "..." literal. */
static void strip_comment(char *line)
{
    int inq = 0;
    char *p;
    for (p = line; *p; p++) {
        if (inq && *p == '\\' && p[1]) {
            p++;
        } else if (*p == '"') {
            inq = !inq;
        } else if (*p == '#' && !inq) {
            *p = '\0';
            return;
        }
    }
}

/* Reads a logical line (joining backslash continuations). Returns NULL at EOF. */
static char *read_logical_line(FILE *f, int *lineno, int *startline)
{
    strbuf b;
    char chunk[4096];
    int have = 0;
    sb_init(&b);
    *startline = *lineno + 1;
    for (;;) {
        size_t n;
        int complete = 0;
        if (!fgets(chunk, sizeof chunk, f))
            break;
        have = 1;
        n = strlen(chunk);
        if (n && chunk[n - 1] == '\n') {
            chunk[--n] = '\0';
            complete = 1;
            (*lineno)++;
        }
        if (n && chunk[n - 1] == '\r')
            chunk[--n] = '\0';
        if (!complete) {
            sb_appendn(&b, chunk, n);
            if (feof(f)) {
                (*lineno)++;
                break;
            }
            continue;
        }
        if (n && chunk[n - 1] == '\\') {
            sb_appendn(&b, chunk, n - 1);
            continue;
        }
        sb_appendn(&b, chunk, n);
        break;
    }
    if (!have) {
        sb_free(&b);
        return NULL;
    }
    return sb_take(&b);
}

static int load_file(ini_file *ini, const char *path, ini_section **cur, int depth, char **err)
{
    FILE *f;
    char *raw;
    int lineno = 0, startline;
    int rc = 0;

    if (depth > MAX_INCLUDE_DEPTH) {
        *err = xasprintf("%s: includes nested too deeply", path);
        return -1;
    }
    f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("Cannot open ini file '%s': %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (raw = read_logical_line(f, &lineno, &startline)) != NULL) {
        char *line;
        strip_comment(raw);
        line = str_trim(raw);
        if (!*line) {
            /* blank */
        } else if (line[0] == '[') {
            char *end = strchr(line, ']');
            char *name;
            if (!end || *str_trim(end + 1)) {
                *err = xasprintf("%s:%d: Syntax error in section heading", path, startline);
                rc = -1;
            } else {
                *end = '\0';
                name = str_trim(line + 1);
                if (str_starts_with(name, "Config ") || str_starts_with(name, "Config\t"))
                    name = str_trim(name + 6);
                if (!*name || strchr(name, ' ')) {
                    *err = xasprintf("%s:%d: Invalid section name '%s'", path, startline, name);
                    rc = -1;
                } else if ((*cur = ini_find_section(ini, name)) == NULL) {
                    *cur = add_section(ini, name);
                }
            }
        } else if (str_starts_with(line, "include ") || str_starts_with(line, "include\t")) {
            char *inc = str_unquote(str_trim(line + 8));
            char *dir = path_dirname(path);
            char *incpath = path_join(dir, inc);
            rc = load_file(ini, incpath, cur, depth + 1, err);
            free(inc);
            free(dir);
            free(incpath);
        } else {
            char *eq = strchr(line, '=');
            ini_section *s;
            char *key, *value;
            int i;
            if (!eq) {
                *err = xasprintf("%s:%d: Line must be in the form key=value", path, startline);
                rc = -1;
            } else {
                *eq = '\0';
                key = str_trim(line);
                value = str_trim(eq + 1);
                if (!*key) {
                    *err = xasprintf("%s:%d: Missing key before '='", path, startline);
                    rc = -1;
                } else {
                    if (!*cur) {
                        *cur = ini_find_section(ini, "General");
                        if (!*cur)
                            *cur = add_section(ini, "General");
                    }
                    s = *cur;
                    for (i = 0; i < s->n; i++) {
                        if (!strcmp(s->entries[i].key, key)) {
                            *err = xasprintf("%s:%d: Duplicate key '%s' in section [%s]", path,
                                             startline, key, s->name);
                            rc = -1;
                            break;
                        }
                    }
                    if (rc == 0) {
                        ini_entry *e;
                        if (s->n == s->cap) {
                            s->cap = s->cap ? 2 * s->cap : 16;
                            s->entries = xrealloc(s->entries, (size_t)s->cap * sizeof *s->entries);
                        }
                        e = &s->entries[s->n++];
                        e->key = xstrdup(key);
                        e->value = xstrdup(value);
                        e->file = xstrdup(path);
                        e->line = startline;
                    }
                }
            }
        }
        free(raw);
    }
    fclose(f);
    return rc;
}

int ini_load(ini_file *ini, const char *path, char **err)
{
    ini_section *cur = NULL;
    ini->path = xstrdup(path);
    ini->dir = path_dirname(path);
    ini->sections = NULL;
    ini->n = ini->cap = 0;
    *err = NULL;
    return load_file(ini, path, &cur, 0, err);
}

void ini_free(ini_file *ini)
{
    int i, j;
    for (i = 0; i < ini->n; i++) {
        ini_section *s = &ini->sections[i];
        for (j = 0; j < s->n; j++) {
            free(s->entries[j].key);
            free(s->entries[j].value);
            free(s->entries[j].file);
        }
        free(s->entries);
        free(s->name);
    }
    free(ini->sections);
    free(ini->path);
    free(ini->dir);
    ini->sections = NULL;
    ini->n = ini->cap = 0;
}
