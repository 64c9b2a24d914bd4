/*  nf_jobopts: see nf_jobopts.h. The code lists are sorted strings of
    fixed-width codes searched with bsearch-like scans; they change only with
    the standards (ISO 3166-1 alpha-2 as officially assigned, ISO 639-1). */
#include "nf_jobopts.h"
#include "nf_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ISO 3166-1 alpha-2, the officially assigned codes. */
static const char s_regions[] =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

/* ISO 639-1 (the two-letter primary language subtags of BCP 47). */
static const char s_langs2[] =
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv "
    "cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr "
    "ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw "
    "ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv "
    "ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr "
    "ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi "
    "yo za zh zu";

/* Three-letter primary subtags (no ISO 639-1 code) that YouTube serves
   caption tracks in. */
static const char s_langs3[] = "ceb chr fil haw hmn mni yue";

const nf_jobopt_t nf_jobopts[] = {
    {"count", "--count", true, 1, 10000, NULL, NULL,
     "a whole number from 1 to 10000 (videos to discover)"},
    {"top_n", "--top-n", true, 1, 100, NULL, NULL,
     "a whole number from 1 to 100 (outliers wanted)"},
    {"min_views", "--min-views", true, 0, 1000000000000LL, NULL, NULL,
     "a whole number of views, 0 or more"},
    {"max_pages", "--max-pages", true, 1, 250, NULL, NULL, "a whole number from 1 to 250"},
    {"max_age_days", "--max-age-days", true, 1, 36500, NULL, NULL,
     "a whole number of days from 1 to 36500"},
    {"since", "--since", false, 0, 0, nf_date_ok, NULL, "a date YYYY-MM-DD"},
    {"until", "--until", false, 0, 0, nf_date_ok, NULL, "a date YYYY-MM-DD"},
    {"region", "--region", false, 0, 0, nf_region_ok, NULL,
     "an ISO 3166-1 alpha-2 country code such as US or GB"},
    {"lang", "--lang", false, 0, 0, nf_lang_list_ok, NULL,
     "a BCP 47 language tag such as en or en-GB (ISO 639-1 language), or a comma list of them"},
    {"translate", "--translate", true, 0, 1, NULL, NULL,
     "0 or 1 (1: when no track is in the job's languages, a translation into the first)"},
    {"format", "--format", false, 0, 0, NULL, "long short any", "long, short or any"},
    {"order", "--order", false, 0, 0, NULL, "relevance date viewCount rating",
     "relevance, date, viewCount or rating"},
    {"source", "--source", false, 0, 0, NULL, NULL,
     "youtube or template:NAME (lower case, digits, - _)"},
};
const size_t nf_jobopts_count = sizeof nf_jobopts / sizeof nf_jobopts[0];
_Static_assert(sizeof nf_jobopts / sizeof nf_jobopts[0] <= NF_JOBOPTS_MAX, "NF_JOBOPTS_MAX");

const nf_jobopt_t *
nf_jobopt_find (const char *key, size_t len)
{
    for (size_t i = 0; i < nf_jobopts_count; i++)
        if (strlen (nf_jobopts[i].key) == len && memcmp (nf_jobopts[i].key, key, len) == 0)
            return &nf_jobopts[i];
    return NULL;
}

const nf_jobopt_t *
nf_jobopt_by_flag (const char *flag)
{
    for (size_t i = 0; flag && i < nf_jobopts_count; i++)
        if (strcmp (nf_jobopts[i].flag, flag) == 0)
            return &nf_jobopts[i];
    return NULL;
}

/* The source: "youtube", or "template:" and a name of lower case, digits, - _. */
static bool
s_source_ok (const char *s, size_t n)
{
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower ((unsigned char) s[i]) && !isdigit ((unsigned char) s[i]) && s[i] != '-'
            && s[i] != '_' && s[i] != ':')
            return false;
    return true;
}

bool
nf_jobopt_str_ok (const nf_jobopt_t *o, const char *s, size_t len)
{
    if (strcmp (o->key, "source") == 0)
        return s_source_ok (s, len);
    return o->check ? o->check (s, len) : nf_word_in (o->enums, s, len);
}

bool
nf_date_ok (const char *s, size_t n)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit ((unsigned char) s[i]))
            return false;
    int y = atoi (s), m = atoi (s + 5), d = atoi (s + 8);
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 2005 || y > 2100 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

bool
nf_region_ok (const char *s, size_t n)
{
    return n == 2 && isupper ((unsigned char) s[0]) && isupper ((unsigned char) s[1])
           && nf_word_in (s_regions, s, 2);
}

bool
nf_lang_tag_ok (const char *s, size_t n)
{
    size_t p = 0;
    while (p < n && s[p] != '-')
        p++;
    char primary[4];
    if (p < 2 || p > 3)
        return false;
    for (size_t i = 0; i < p; i++) {
        if (!isalpha ((unsigned char) s[i]))
            return false;
        primary[i] = (char) tolower ((unsigned char) s[i]);
    }
    if (!nf_word_in (p == 2 ? s_langs2 : s_langs3, primary, p))
        return false;
    /* Subtags: at most one script (4 letters), then at most one region. */
    bool script = false, region = false;
    for (size_t at = p; at < n;) {
        size_t b = at + 1, e = b;
        while (e < n && s[e] != '-')
            e++;
        size_t len = e - b;
        char up[3] = {0};
        if (len == 4 && !script && !region) {
            for (size_t i = b; i < e; i++)
                if (!isalpha ((unsigned char) s[i]))
                    return false;
            script = true;
        }
        else if (len == 2 && !region) {
            up[0] = (char) toupper ((unsigned char) s[b]);
            up[1] = (char) toupper ((unsigned char) s[b + 1]);
            if (!nf_region_ok (up, 2))
                return false;
            region = true;
        }
        else if (len == 3 && !region && isdigit ((unsigned char) s[b])
                 && isdigit ((unsigned char) s[b + 1]) && isdigit ((unsigned char) s[b + 2]))
            region = true; /* a UN M.49 area such as 419 */
        else
            return false;
        at = e;
    }
    return true;
}

bool
nf_lang_list_ok (const char *s, size_t n)
{
    if (n == 0 || n > 120)
        return false;
    int tags = 0;
    for (size_t at = 0; at <= n;) {
        size_t e = at;
        while (e < n && s[e] != ',')
            e++;
        if (++tags > 8 || !nf_lang_tag_ok (s + at, e - at))
            return false;
        at = e + 1;
    }
    return true;
}
