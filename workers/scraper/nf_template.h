/*  nf_template: extraction templates. A template is a JSON document naming
    fields; each field has selectors tried in order (the first is the
    primary, the rest are fallbacks), an optional `required` flag and
    post-processing steps. A selector is an XPath 1.0 expression over the
    page (libxml2's forgiving HTML parser) or a reference to an earlier
    field. When a site changes its markup, a user edits a template, not C.

      {
        "name": "youtube-watch", "version": 1,
        "fields": [
          {"name": "player", "required": true,
           "selectors": [
             {"xpath": "//script[contains(., 'var ytInitialPlayerResponse')]",
              "post": [{"regex": "ytInitialPlayerResponse *= *(\\{.*)", "group": 1}, {"json": ""}]},
             {"xpath": "//script[contains(., 'ytInitialPlayerResponse')]",
              "post": [{"regex": "\\[\"ytInitialPlayerResponse\"\\] *= *(\\{.*)", "group": 1},
                       {"json": ""}]}]},
          {"name": "views", "selectors": [{"xpath": "//meta[@itemprop='interactionCount']/@content"},
                                          {"from": "player", "post": [{"json": "videoDetails.viewCount"}]}],
           "post": ["number"]}
        ]
      }

    Selector keys: `xpath` (node set: the first node's text, or every
    node's with "all": true; string, number and boolean results as they
    are) or `from` (an earlier field's value); `post` (steps for this
    selector only). Field keys: `name`, `selectors` (at least one),
    `required` (default false), `post` (steps after whichever selector
    matched). Steps, applied in order; a step that finds nothing makes
    the selector fail, and the next one is tried:
      "trim"       collapse white space, trim the ends
      "number"     "1,234 views" -> 1234; "1.2M" -> 1200000; "3.4K" -> 3400
      "duration"   "PT1H2M3S", "1:02:03", "12:34" or "754" -> seconds
      "date"       ISO 8601 or an HTTP/English date -> "YYYY-MM-DDTHH:MM:SSZ"
      "lower"      ASCII lower case
      {"regex": ERE, "group": N}   POSIX extended regex; group N (default 0)
      {"json": PATH}   parse embedded JSON (from the first { or [ to its
                       matching bracket) and walk PATH ("a.b[0].c"; "" is
                       the whole document)
    The result has every matched field, and `_matched`: field name to the
    index of the selector that matched (0 primary, 1+ fallbacks). */
#ifndef NF_TEMPLATE_H
#define NF_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

typedef struct nf_template_t nf_template_t;

/* Parse and check template TEXT (LEN bytes): every XPath and regex
   compiles, `from` names an earlier field. NULL with ERR otherwise. */
nf_template_t *nf_template_new (const char *text, size_t len, char *err, size_t errlen);
void nf_template_destroy (nf_template_t **self_p);

const char *nf_template_name (const nf_template_t *self);
/* The template's own JSON (for extra sections such as `listing`). */
const json_t *nf_template_json (const nf_template_t *self);

/* Apply to the HTML page BODY (LEN bytes; BASE_URL resolves relative
   links). Returns a new object, or NULL with ERR when a required field
   matched none of its selectors. */
json_t *nf_template_apply (const nf_template_t *self, const char *body, size_t len,
                           const char *base_url, char *err, size_t errlen);

/* One post-processing step on VALUE (borrowed); a new value or NULL when
   the step finds nothing. Exposed for the unit tests. */
json_t *nf_template_step (const json_t *step, const json_t *value);

/* Seconds of "PT1H2M3S", "1:02:03", "12:34" or "754"; -1 when none of them. */
long nf_duration_parse (const char *text);

#endif
