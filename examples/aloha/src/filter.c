#include "filter.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------------ */
/* run lists                                                           */

static int is_run_list(const char *s)
{
    int digits = 0;
    for (; *s; s++) {
        if (isdigit((unsigned char)*s))
            digits++;
        else if (!(*s == ',' || *s == '.' || *s == '-' || *s == ' ' || *s == '\t'))
            return 0;
    }
    return digits > 0;
}

/* seen: optional bitmap (one byte per run) to drop duplicates */
static void add_run(int **runs, int *n, int *cap, int r, unsigned char *seen)
{
    if (seen) {
        if (seen[r])
            return;
        seen[r] = 1;
    }
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *runs = xrealloc(*runs, (size_t)*cap * sizeof **runs);
    }
    (*runs)[(*n)++] = r;
}

static int parse_run_number(const char *s, long *v)
{
    char *copy = xstrdup(s), *t = str_trim(copy);
    int rc = parse_long_strict(t, v);
    const char *p;
    for (p = t; *p && rc == 0; p++)
        if (!isdigit((unsigned char)*p))
            rc = -1;
    free(copy);
    return rc;
}

static int parse_run_list(const config_t *cfg, const char *list, int **runs, int *n, char **err)
{
    char *copy = xstrdup(list), *tok, *save = NULL;
    unsigned char *seen = xcalloc((size_t)cfg->nruns, 1);
    int cap = 0;
    *runs = NULL;
    *n = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *item = str_trim(tok), *sep;
        long from, to, r;
        size_t seplen = 2;
        if (!*item)
            continue;
        sep = strstr(item, "..");
        if (!sep) {
            sep = strchr(item, '-');
            seplen = 1;
        }
        if (sep) {
            char *a = xstrndup(item, (size_t)(sep - item));
            int bad = parse_run_number(a, &from) != 0 || parse_run_number(sep + seplen, &to) != 0;
            free(a);
            if (bad) {
                *err = xasprintf("Syntax error in run list '%s'", list);
                goto fail;
            }
            if (from > to) {
                *err = xasprintf("Backwards range '%s' in run list '%s'", item, list);
                goto fail;
            }
        } else {
            if (parse_run_number(item, &from) != 0) {
                *err = xasprintf("Syntax error in run list '%s'", list);
                goto fail;
            }
            to = from;
        }
        for (r = from; r <= to; r++) {
            if (r < 0 || r >= cfg->nruns) {
                *err = xasprintf("Run number %ld in run list '%s' is out of range 0..%d", r, list,
                                 cfg->nruns - 1);
                goto fail;
            }
            add_run(runs, n, &cap, (int)r, seen);
        }
    }
    free(copy);
    free(seen);
    return 0;
fail:
    free(copy);
    free(seen);
    free(*runs);
    *runs = NULL;
    *n = 0;
    return -1;
}

/* ------------------------------------------------------------------ */
/* expressions                                                         */

enum tok_kind { T_END, T_LP, T_RP, T_AND, T_OR, T_NOT, T_CMP, T_VAR, T_NUM, T_STR };
enum cmp_op { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_MATCH };

typedef struct {
    int kind;
    int op;
    char *text;
} token;

enum node_kind { N_OR, N_AND, N_NOT, N_CMP, N_VAR, N_LIT };

typedef struct node {
    int kind;
    int op;
    char *text;      /* N_VAR: name; N_LIT: text */
    int var;         /* N_VAR: index into cfg->vars, or -1 repetition, -2 runnumber */
    struct node *a, *b;
} node;

typedef struct {
    token *t;
    int n, pos;
    const char *src;
    const config_t *cfg;
    char *err;
} parser;

static void tok_add(parser *p, int kind, int op, char *text)
{
    p->t = xrealloc(p->t, (size_t)(p->n + 1) * sizeof *p->t);
    p->t[p->n].kind = kind;
    p->t[p->n].op = op;
    p->t[p->n].text = text;
    p->n++;
}

static int tokenize(parser *p)
{
    const char *s = p->src;
    while (*s) {
        if (isspace((unsigned char)*s)) {
            s++;
        } else if (*s == '(') {
            tok_add(p, T_LP, 0, NULL);
            s++;
        } else if (*s == ')') {
            tok_add(p, T_RP, 0, NULL);
            s++;
        } else if (s[0] == '&' && s[1] == '&') {
            tok_add(p, T_AND, 0, NULL);
            s += 2;
        } else if (s[0] == '|' && s[1] == '|') {
            tok_add(p, T_OR, 0, NULL);
            s += 2;
        } else if (s[0] == '=' && s[1] == '=') {
            tok_add(p, T_CMP, C_EQ, NULL);
            s += 2;
        } else if (s[0] == '=' && s[1] == '~') {
            tok_add(p, T_CMP, C_MATCH, NULL);
            s += 2;
        } else if (s[0] == '!' && s[1] == '=') {
            tok_add(p, T_CMP, C_NE, NULL);
            s += 2;
        } else if (s[0] == '<' && s[1] == '=') {
            tok_add(p, T_CMP, C_LE, NULL);
            s += 2;
        } else if (s[0] == '>' && s[1] == '=') {
            tok_add(p, T_CMP, C_GE, NULL);
            s += 2;
        } else if (*s == '<') {
            tok_add(p, T_CMP, C_LT, NULL);
            s++;
        } else if (*s == '>') {
            tok_add(p, T_CMP, C_GT, NULL);
            s++;
        } else if (*s == '!') {
            tok_add(p, T_NOT, 0, NULL);
            s++;
        } else if (*s == '$') {
            const char *b;
            s++;
            if (*s == '{') {
                const char *e = strchr(s, '}');
                if (!e) {
                    p->err = xasprintf("Missing '}' in filter '%s'", p->src);
                    return -1;
                }
                b = s + 1;
                tok_add(p, T_VAR, 0, xstrndup(b, (size_t)(e - b)));
                s = e + 1;
            } else {
                b = s;
                while (isalnum((unsigned char)*s) || *s == '_')
                    s++;
                if (s == b) {
                    p->err = xasprintf("Missing variable name after '$' in filter '%s'", p->src);
                    return -1;
                }
                tok_add(p, T_VAR, 0, xstrndup(b, (size_t)(s - b)));
            }
        } else if (*s == '"' || *s == '\'') {
            char q = *s++;
            strbuf b;
            sb_init(&b);
            sb_append(&b, "");
            while (*s && *s != q) {
                if (*s == '\\' && s[1])
                    s++;
                sb_putc(&b, *s++);
            }
            if (!*s) {
                sb_free(&b);
                p->err = xasprintf("Unterminated string in filter '%s'", p->src);
                return -1;
            }
            s++;
            tok_add(p, T_STR, 0, sb_take(&b));
        } else if (isdigit((unsigned char)*s) || ((*s == '-' || *s == '+' || *s == '.') &&
                                                  (isdigit((unsigned char)s[1]) || s[1] == '.'))) {
            char *end;
            strtod(s, &end);
            /* allow a unit suffix such as 10ms: kept as part of the text */
            while (isalpha((unsigned char)*end))
                end++;
            tok_add(p, T_NUM, 0, xstrndup(s, (size_t)(end - s)));
            s = end;
        } else if (isalpha((unsigned char)*s) || *s == '_' || *s == '*' || *s == '?') {
            const char *b = s;
            char *w;
            while (*s && (isalnum((unsigned char)*s) || strchr("_*?.[]{}-", *s)))
                s++;
            w = xstrndup(b, (size_t)(s - b));
            if (!strcmp(w, "and")) {
                tok_add(p, T_AND, 0, NULL);
                free(w);
            } else if (!strcmp(w, "or")) {
                tok_add(p, T_OR, 0, NULL);
                free(w);
            } else if (!strcmp(w, "not")) {
                tok_add(p, T_NOT, 0, NULL);
                free(w);
            } else {
                tok_add(p, T_STR, 0, w);
            }
        } else {
            p->err = xasprintf("Syntax error in filter expression '%s' at '%s'", p->src, s);
            return -1;
        }
    }
    tok_add(p, T_END, 0, NULL);
    return 0;
}

static node *mk(int kind, int op, node *a, node *b)
{
    node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static void node_free(node *n)
{
    if (!n)
        return;
    node_free(n->a);
    node_free(n->b);
    free(n->text);
    free(n);
}

static node *parse_or(parser *p);

static node *parse_primary(parser *p)
{
    token *t = &p->t[p->pos];
    node *n;
    if (p->err)
        return NULL;
    switch (t->kind) {
    case T_LP:
        p->pos++;
        n = parse_or(p);
        if (!n)
            return NULL;
        if (p->t[p->pos].kind != T_RP) {
            p->err = xasprintf("Missing ')' in filter expression '%s'", p->src);
            node_free(n);
            return NULL;
        }
        p->pos++;
        return n;
    case T_VAR: {
        int i;
        n = mk(N_VAR, 0, NULL, NULL);
        n->text = xstrdup(t->text);
        n->var = -99;
        if (!strcmp(t->text, "repetition"))
            n->var = -1;
        else if (!strcmp(t->text, "runnumber"))
            n->var = -2;
        for (i = 0; i < p->cfg->nvars; i++)
            if (!strcmp(p->cfg->vars[i].name, t->text))
                n->var = i;
        if (n->var == -99) {
            p->err = xasprintf("Unknown iteration variable $%s in filter expression '%s'",
                               t->text, p->src);
            node_free(n);
            return NULL;
        }
        p->pos++;
        return n;
    }
    case T_NUM:
    case T_STR:
        n = mk(N_LIT, 0, NULL, NULL);
        n->text = xstrdup(t->text);
        p->pos++;
        return n;
    default:
        p->err = xasprintf("Syntax error in filter expression '%s'", p->src);
        return NULL;
    }
}

static node *parse_cmp(parser *p)
{
    node *a = parse_primary(p), *b;
    int op;
    if (!a)
        return NULL;
    if (p->t[p->pos].kind != T_CMP)
        return a;
    op = p->t[p->pos].op;
    p->pos++;
    b = parse_primary(p);
    if (!b) {
        node_free(a);
        return NULL;
    }
    return mk(N_CMP, op, a, b);
}

static node *parse_not(parser *p)
{
    if (p->t[p->pos].kind == T_NOT) {
        node *a;
        p->pos++;
        a = parse_not(p);
        return a ? mk(N_NOT, 0, a, NULL) : NULL;
    }
    return parse_cmp(p);
}

static node *parse_and(parser *p)
{
    node *a = parse_not(p);
    while (a && p->t[p->pos].kind == T_AND) {
        node *b;
        p->pos++;
        b = parse_not(p);
        if (!b) {
            node_free(a);
            return NULL;
        }
        a = mk(N_AND, 0, a, b);
    }
    return a;
}

static node *parse_or(parser *p)
{
    node *a = parse_and(p);
    while (a && p->t[p->pos].kind == T_OR) {
        node *b;
        p->pos++;
        b = parse_and(p);
        if (!b) {
            node_free(a);
            return NULL;
        }
        a = mk(N_OR, 0, a, b);
    }
    return a;
}

/* value of a leaf as text (quotes removed) */
static char *leaf_text(const node *n, const run_ctx *r)
{
    if (n->kind == N_LIT)
        return xstrdup(n->text);
    if (n->var == -1)
        return xasprintf("%d", r->repetition);
    if (n->var == -2)
        return xasprintf("%d", r->runnumber);
    return str_unquote(run_var_value(r, n->var));
}

static int truthy(const char *s)
{
    double d;
    if (parse_double_strict(s, &d) == 0)
        return d != 0;
    return *s && strcmp(s, "false") != 0;
}

static int eval(const node *n, const run_ctx *r)
{
    switch (n->kind) {
    case N_OR:
        return eval(n->a, r) || eval(n->b, r);
    case N_AND:
        return eval(n->a, r) && eval(n->b, r);
    case N_NOT:
        return !eval(n->a, r);
    case N_CMP: {
        char *x = leaf_text(n->a, r), *y = leaf_text(n->b, r);
        double dx, dy;
        int c, res = 0;
        if (n->op == C_MATCH) {
            res = pattern_match(y, x);
        } else {
            if (parse_double_strict(x, &dx) == 0 && parse_double_strict(y, &dy) == 0)
                c = dx < dy ? -1 : dx > dy ? 1 : 0;
            else
                c = strcmp(x, y);
            switch (n->op) {
            case C_EQ: res = c == 0; break;
            case C_NE: res = c != 0; break;
            case C_LT: res = c < 0; break;
            case C_LE: res = c <= 0; break;
            case C_GT: res = c > 0; break;
            case C_GE: res = c >= 0; break;
            default: break;
            }
        }
        free(x);
        free(y);
        return res;
    }
    default: {
        char *x = leaf_text(n, r);
        int res = truthy(x);
        free(x);
        return res;
    }
    }
}

int run_filter(const config_t *cfg, const char *filter, int **runs, int *n, char **err)
{
    parser p;
    node *root;
    int i, cap = 0;

    *err = NULL;
    *runs = NULL;
    *n = 0;
    if (!filter || !*filter) {
        *runs = xmalloc((size_t)cfg->nruns * sizeof **runs);
        for (i = 0; i < cfg->nruns; i++)
            (*runs)[i] = i;
        *n = cfg->nruns;
        return 0;
    }
    if (is_run_list(filter))
        return parse_run_list(cfg, filter, runs, n, err);

    memset(&p, 0, sizeof p);
    p.src = filter;
    p.cfg = cfg;
    root = NULL;
    if (tokenize(&p) == 0) {
        root = parse_or(&p);
        if (root && p.t[p.pos].kind != T_END) {
            p.err = xasprintf("Syntax error in filter expression '%s'", filter);
            node_free(root);
            root = NULL;
        }
    }
    for (i = 0; i < p.n; i++)
        free(p.t[i].text);
    free(p.t);
    if (!root) {
        *err = p.err ? p.err : xasprintf("Syntax error in filter expression '%s'", filter);
        return -1;
    }
    for (i = 0; i < cfg->nruns; i++) {
        run_ctx r;
        run_ctx_init_light(&r, cfg, i);
        if (eval(root, &r))
            add_run(runs, n, &cap, i, NULL);
        run_ctx_free(&r);
    }
    node_free(root);
    return 0;
}
