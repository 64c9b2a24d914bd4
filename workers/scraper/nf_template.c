/*  nf_template: see nf_template.h. */
#include "nf_template.h"
#include "nf_util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <libxml/HTMLparser.h>
#include <libxml/uri.h>
#include <libxml/xpath.h>
#include <limits.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nf_template_t {
    json_t *doc;
    const char *name; /* inside doc */
};

static void
s_quiet (void *ctx, const xmlError *error)
{
    (void) ctx;
    (void) error;
}

/* ---- checking ---------------------------------------------------------------- */

static const char *const s_simple_steps[] = {"trim", "number", "duration", "date", "lower", "url"};

static int
s_check_steps (const json_t *steps, const char *field, char *err, size_t errlen)
{
    if (!steps)
        return 0;
    if (!json_is_array (steps)) {
        snprintf (err, errlen, "field '%s': post must be an array", field);
        return -1;
    }
    size_t i;
    const json_t *s;
    json_array_foreach (steps, i, s)
    {
        if (json_is_string (s)) {
            bool known = false;
            for (size_t k = 0; k < sizeof s_simple_steps / sizeof s_simple_steps[0]; k++)
                known = known || strcmp (json_string_value (s), s_simple_steps[k]) == 0;
            if (!known) {
                snprintf (err, errlen, "field '%s': unknown step '%s'", field,
                          json_string_value (s));
                return -1;
            }
            continue;
        }
        const json_t *re = json_object_get (s, "regex"), *path = json_object_get (s, "json");
        if (json_is_string (re)) {
            regex_t rx;
            int rc = regcomp (&rx, json_string_value (re), REG_EXTENDED);
            if (rc != 0) {
                char msg[128];
                regerror (rc, &rx, msg, sizeof msg);
                snprintf (err, errlen, "field '%s': bad regex '%s': %s", field,
                          json_string_value (re), msg);
                return -1;
            }
            size_t groups = rx.re_nsub;
            regfree (&rx);
            json_int_t g = json_integer_value (json_object_get (s, "group"));
            if (g < 0 || (size_t) g > groups) {
                snprintf (err, errlen, "field '%s': regex has no group %lld", field, (long long) g);
                return -1;
            }
        }
        else if (!json_is_string (path)) {
            snprintf (err, errlen,
                      "field '%s': a step is a name, {\"regex\": ...} or {\"json\": ...}", field);
            return -1;
        }
    }
    return 0;
}

nf_template_t *
nf_template_new (const char *text, size_t len, char *err, size_t errlen)
{
    xmlSetStructuredErrorFunc (NULL, (xmlStructuredErrorFunc) s_quiet);
    json_error_t jerr;
    json_t *doc = json_loadb (text, len, 0, &jerr);
    if (!doc) {
        snprintf (err, errlen, "not JSON: %s (line %d)", jerr.text, jerr.line);
        return NULL;
    }
    const json_t *name = json_object_get (doc, "name"), *fields = json_object_get (doc, "fields");
    if (!json_is_string (name) || !json_is_array (fields) || json_array_size (fields) == 0) {
        snprintf (err, errlen, "a template needs \"name\" and a non-empty \"fields\" array");
        json_decref (doc);
        return NULL;
    }
    size_t i;
    const json_t *f;
    json_array_foreach (fields, i, f)
    {
        const char *fname = json_string_value (json_object_get (f, "name"));
        const json_t *sels = json_object_get (f, "selectors");
        if (!fname || !*fname || !json_is_array (sels) || json_array_size (sels) == 0) {
            snprintf (err, errlen, "field %zu needs a \"name\" and at least one selector", i + 1);
            goto fail;
        }
        const json_t *req = json_object_get (f, "required");
        if (req && !json_is_boolean (req)) {
            snprintf (err, errlen, "field '%s': required must be true or false", fname);
            goto fail;
        }
        if (s_check_steps (json_object_get (f, "post"), fname, err, errlen) != 0)
            goto fail;
        size_t k;
        const json_t *sel;
        json_array_foreach (sels, k, sel)
        {
            const char *xp = json_string_value (json_object_get (sel, "xpath"));
            const char *from = json_string_value (json_object_get (sel, "from"));
            if (!xp == !from) {
                snprintf (err, errlen, "field '%s' selector %zu: give either xpath or from", fname,
                          k + 1);
                goto fail;
            }
            if (xp) {
                xmlXPathCompExprPtr c = xmlXPathCompile (BAD_CAST xp);
                if (!c) {
                    snprintf (err, errlen, "field '%s' selector %zu: bad XPath '%s'", fname, k + 1,
                              xp);
                    goto fail;
                }
                xmlXPathFreeCompExpr (c);
            }
            else {
                bool earlier = false;
                for (size_t j = 0; j < i; j++)
                    earlier = earlier
                              || strcmp (json_string_value (
                                             json_object_get (json_array_get (fields, j), "name")),
                                         from)
                                     == 0;
                if (!earlier) {
                    snprintf (err, errlen,
                              "field '%s' selector %zu: from '%s' is not an earlier "
                              "field",
                              fname, k + 1, from);
                    goto fail;
                }
            }
            if (s_check_steps (json_object_get (sel, "post"), fname, err, errlen) != 0)
                goto fail;
        }
    }
    nf_template_t *self = calloc (1, sizeof *self);
    if (!self)
        goto fail;
    self->doc = doc;
    self->name = json_string_value (name);
    return self;
fail:
    json_decref (doc);
    return NULL;
}

void
nf_template_destroy (nf_template_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    json_decref ((*self_p)->doc);
    free (*self_p);
    *self_p = NULL;
}

const char *
nf_template_name (const nf_template_t *self)
{
    return self->name;
}

const json_t *
nf_template_json (const nf_template_t *self)
{
    return self->doc;
}

/* ---- steps ------------------------------------------------------------------------ */

long
nf_duration_parse (const char *t)
{
    if (!t || !*t)
        return -1;
    if (t[0] == 'P') { /* ISO 8601: PnDTnHnMnS */
        long total = 0, n = 0;
        bool digits = false, in_time = false;
        for (const char *p = t + 1; *p; p++) {
            if (isdigit ((unsigned char) *p)) {
                n = n * 10 + (*p - '0');
                digits = true;
                if (n > 100000000)
                    return -1;
                continue;
            }
            if (*p == 'T' && !in_time) {
                in_time = true;
                continue;
            }
            if (!digits)
                return -1;
            switch (*p) {
            case 'D': total += n * 86400; break;
            case 'H': total += n * 3600; break;
            case 'M': total += in_time ? n * 60 : n * 2592000; break;
            case 'S': total += n; break;
            case 'W': total += n * 604800; break;
            default: return -1;
            }
            n = 0;
            digits = false;
        }
        return digits ? -1 : total;
    }
    long total = 0, n = 0;
    int parts = 0;
    bool digits = false;
    for (const char *p = t;; p++) {
        if (isdigit ((unsigned char) *p)) {
            n = n * 10 + (*p - '0');
            digits = true;
            if (n > 100000000)
                return -1;
            continue;
        }
        if ((*p != ':' && *p != 0) || !digits || ++parts > 3)
            return -1;
        total = total * 60 + n;
        n = 0;
        digits = false;
        if (*p == 0)
            return total;
    }
}

static json_t *
s_number (const char *t)
{
    const char *p = t;
    while (*p && !isdigit ((unsigned char) *p))
        p++;
    if (!*p)
        return NULL;
    double v = 0, scale = 0;
    for (; *p; p++) {
        if (isdigit ((unsigned char) *p)) {
            if (scale > 0) {
                v += (*p - '0') * scale;
                scale /= 10;
            }
            else
                v = v * 10 + (*p - '0');
        }
        else if (*p == ',' && scale == 0 && isdigit ((unsigned char) p[1]))
            continue;
        else if (*p == '.' && scale == 0 && isdigit ((unsigned char) p[1]))
            scale = 0.1;
        else
            break;
        if (v > 9e15)
            return NULL;
    }
    while (*p == ' ')
        p++;
    char s = (char) toupper ((unsigned char) *p);
    bool word_end = *p && !isalpha ((unsigned char) p[1]); /* "1.2M" but not "12 Mar" */
    if (s == 'K' && word_end)
        v *= 1e3;
    else if (s == 'M' && word_end)
        v *= 1e6;
    else if (s == 'B' && word_end)
        v *= 1e9;
    return json_integer ((json_int_t) (v + 0.5));
}

static json_t *
s_date (const char *t)
{
    double epoch;
    if (nf_time_parse (t, strlen (t), &epoch) != 0) {
        time_t at = curl_getdate (t, NULL);
        if (at < 0)
            return NULL;
        epoch = (double) at;
    }
    time_t s = (time_t) epoch;
    struct tm tm;
    char out[32];
    gmtime_r (&s, &tm);
    strftime (out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string (out);
}

static json_t *
s_trim (const char *t)
{
    nf_buf_t b;
    nf_buf_init (&b);
    bool space = false;
    for (const char *p = t; *p; p++) {
        if (isspace ((unsigned char) *p)) {
            space = b.len > 0;
            continue;
        }
        if (space)
            nf_buf_append (&b, " ", 1);
        space = false;
        nf_buf_append (&b, p, 1);
    }
    json_t *v = json_stringn (b.data ? b.data : "", b.len);
    nf_buf_free (&b);
    return v;
}

/* The JSON text starting at the first { or [ of T, to its matching bracket. */
static json_t *
s_embedded_json (const char *t, size_t len)
{
    size_t start = 0;
    while (start < len && t[start] != '{' && t[start] != '[')
        start++;
    int depth = 0;
    bool in_str = false;
    for (size_t i = start; i < len; i++) {
        char c = t[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return json_loadb (t + start, i - start + 1, JSON_DECODE_ANY, NULL);
    }
    return NULL;
}

/* Walk "a.b[0].c" from V (borrowed); a borrowed result or NULL. */
static const json_t *
s_walk (const json_t *v, const char *path)
{
    const char *p = path;
    while (v && *p) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            char *end = NULL;
            long idx = strtol (p + 1, &end, 10);
            if (!end || *end != ']' || idx < 0)
                return NULL;
            v = json_array_get (v, (size_t) idx);
            p = end + 1;
            continue;
        }
        size_t n = strcspn (p, ".[");
        char key[256];
        if (n >= sizeof key)
            return NULL;
        memcpy (key, p, n);
        key[n] = 0;
        v = json_object_get (v, key);
        p += n;
    }
    return v;
}

static json_t *
s_regex (const json_t *step, const char *t)
{
    regex_t rx;
    if (regcomp (&rx, json_string_value (json_object_get (step, "regex")), REG_EXTENDED) != 0)
        return NULL;
    size_t g = (size_t) json_integer_value (json_object_get (step, "group"));
    regmatch_t m[10];
    json_t *out = NULL;
    if (g < 10 && regexec (&rx, t, 10, m, 0) == 0 && m[g].rm_so >= 0)
        out = json_stringn (t + m[g].rm_so, (size_t) (m[g].rm_eo - m[g].rm_so));
    regfree (&rx);
    return out;
}

json_t *
nf_template_step (const json_t *step, const json_t *value)
{
    if (!value)
        return NULL;
    const char *name = json_string_value (step);
    const json_t *path = json_object_get (step, "json");
    if (json_is_array (value) && !path) { /* scalar steps map over arrays */
        json_t *out = json_array ();
        size_t i;
        const json_t *item;
        json_array_foreach (value, i, item)
        {
            json_t *r = nf_template_step (step, item);
            if (r)
                json_array_append_new (out, r);
        }
        return out;
    }
    char num[64];
    const char *t = json_string_value (value);
    if (!t && json_is_number (value)) {
        snprintf (num, sizeof num, "%.0f", json_number_value (value));
        t = num;
    }
    if (path) {
        json_t *doc = json_is_string (value)
                          ? s_embedded_json (json_string_value (value), json_string_length (value))
                          : json_incref ((json_t *) value);
        const json_t *hit = doc ? s_walk (doc, json_string_value (path)) : NULL;
        json_t *out = hit && !json_is_null (hit) ? json_incref ((json_t *) hit) : NULL;
        json_decref (doc);
        return out;
    }
    if (!t)
        return NULL;
    if (!name)
        return s_regex (step, t);
    if (strcmp (name, "trim") == 0)
        return s_trim (t);
    if (strcmp (name, "number") == 0)
        return s_number (t);
    if (strcmp (name, "duration") == 0) {
        long s = nf_duration_parse (t);
        return s < 0 ? NULL : json_integer (s);
    }
    if (strcmp (name, "date") == 0)
        return s_date (t);
    if (strcmp (name, "lower") == 0) {
        char *copy = strdup (t);
        for (char *p = copy; p && *p; p++)
            *p = (char) tolower ((unsigned char) *p);
        json_t *out = json_string (copy ? copy : "");
        free (copy);
        return out;
    }
    return NULL; /* "url" needs the page: see s_apply_steps */
}

/* "url": V (a string or an array of them) resolved against BASE_URL. */
static json_t *
s_resolve (const json_t *v, const char *base_url)
{
    if (json_is_array (v)) {
        json_t *out = json_array ();
        size_t i;
        const json_t *item;
        json_array_foreach (v, i, item)
        {
            json_t *r = s_resolve (item, base_url);
            if (r)
                json_array_append_new (out, r);
        }
        return out;
    }
    if (!json_is_string (v))
        return NULL;
    xmlChar *abs =
        xmlBuildURI (BAD_CAST json_string_value (v), BAD_CAST (base_url ? base_url : ""));
    json_t *out = abs ? json_string ((const char *) abs) : NULL;
    xmlFree (abs);
    return out;
}

static json_t *
s_apply_steps (const json_t *steps, json_t *v, const char *base_url)
{
    size_t i;
    const json_t *s;
    json_array_foreach (steps, i, s)
    {
        if (!v)
            return NULL;
        json_t *next = json_is_string (s) && strcmp (json_string_value (s), "url") == 0
                           ? s_resolve (v, base_url)
                           : nf_template_step (s, v);
        json_decref (v);
        v = next;
    }
    return v;
}

/* ---- applying -------------------------------------------------------------------- */

static json_t *
s_node_text (xmlNodePtr node)
{
    xmlChar *c = xmlNodeGetContent (node);
    json_t *v = c ? json_string ((const char *) c) : NULL;
    if (c && !v) { /* not UTF-8: repair */
        nf_buf_t b;
        nf_buf_init (&b);
        nf_buf_utf8_repair (&b, (const char *) c, strlen ((const char *) c));
        v = json_string (b.data ? b.data : "");
        nf_buf_free (&b);
    }
    xmlFree (c);
    return v;
}

static json_t *
s_xpath (xmlXPathContextPtr ctx, const char *expr, bool all)
{
    xmlXPathObjectPtr r = xmlXPathEvalExpression (BAD_CAST expr, ctx);
    if (!r)
        return NULL;
    json_t *out = NULL;
    switch (r->type) {
    case XPATH_NODESET:
        if (r->nodesetval && r->nodesetval->nodeNr > 0) {
            if (all) {
                out = json_array ();
                for (int i = 0; i < r->nodesetval->nodeNr; i++) {
                    json_t *t = s_node_text (r->nodesetval->nodeTab[i]);
                    if (t)
                        json_array_append_new (out, t);
                }
            }
            else
                out = s_node_text (r->nodesetval->nodeTab[0]);
        }
        break;
    case XPATH_STRING: out = json_string ((const char *) r->stringval); break;
    case XPATH_NUMBER: out = json_real (r->floatval); break;
    case XPATH_BOOLEAN: out = json_boolean (r->boolval); break;
    default: break;
    }
    xmlXPathFreeObject (r);
    return out;
}

static bool
s_empty (const json_t *v)
{
    return !v || json_is_null (v) || (json_is_string (v) && json_string_length (v) == 0)
           || (json_is_array (v) && json_array_size (v) == 0);
}

json_t *
nf_template_apply (const nf_template_t *self, const char *body, size_t len, const char *base_url,
                   char *err, size_t errlen)
{
    if (len > INT_MAX) {
        snprintf (err, errlen, "page too large");
        return NULL;
    }
    htmlDocPtr doc = htmlReadMemory (body ? body : "", (int) len, base_url, "UTF-8",
                                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING
                                         | HTML_PARSE_NONET | HTML_PARSE_COMPACT);
    xmlXPathContextPtr ctx = doc ? xmlXPathNewContext (doc) : NULL;
    json_t *out = json_object (), *matched = json_object ();
    const json_t *fields = json_object_get (self->doc, "fields");
    size_t i;
    const json_t *f;
    json_array_foreach (fields, i, f)
    {
        const char *name = json_string_value (json_object_get (f, "name"));
        const json_t *sels = json_object_get (f, "selectors");
        json_t *value = NULL;
        size_t k;
        const json_t *sel;
        json_array_foreach (sels, k, sel)
        {
            const char *xp = json_string_value (json_object_get (sel, "xpath"));
            json_t *v = NULL;
            if (xp)
                v = ctx ? s_xpath (ctx, xp, json_is_true (json_object_get (sel, "all"))) : NULL;
            else {
                json_t *src =
                    json_object_get (out, json_string_value (json_object_get (sel, "from")));
                v = src ? json_incref (src) : NULL;
            }
            v = s_apply_steps (json_object_get (sel, "post"), v, base_url);
            v = s_apply_steps (json_object_get (f, "post"), v, base_url);
            if (!s_empty (v)) {
                value = v;
                json_object_set_new (matched, name, json_integer ((json_int_t) k));
                break;
            }
            json_decref (v);
        }
        if (value)
            json_object_set_new (out, name, value);
        else if (json_is_true (json_object_get (f, "required"))) {
            snprintf (
                err, errlen, "template %s: required field '%s' not found (%zu selector%s tried)",
                self->name, name, json_array_size (sels), json_array_size (sels) == 1 ? "" : "s");
            json_decref (out);
            out = NULL;
            break;
        }
    }
    if (out)
        json_object_set_new (out, "_matched", matched);
    else
        json_decref (matched);
    if (ctx)
        xmlXPathFreeContext (ctx);
    if (doc)
        xmlFreeDoc (doc);
    return out;
}
