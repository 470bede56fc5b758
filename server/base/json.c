/* json.c: strict JSON parsing for everything casetrail reads from outside, and typed readers
 * for request-body members. */
#include <stdlib.h>
#include <string.h>

#include "casetrail/json.h"

/* Deepest nesting of arrays and objects in body, counted on the raw bytes before cJSON sees
 * them (cJSON recurses per level, so the check must come first). Stops counting at limit+1. */
static int nesting(const char *body, size_t len, int limit)
{
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (c == '\\')
                i++; /* an escaped quote does not end the string */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest)
                deepest = depth;
            if (deepest > limit)
                break;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return deepest;
}

/* Offset of the first \u0000 escape inside a JSON string of body at or after from (where the
 * scan is inside a string when in_string), or len when none. An escaped backslash before
 * "u0000" is text, not an escape. */
static size_t first_nul_escape(const char *body, size_t len, size_t from, bool in_string)
{
    for (size_t i = from; i < len; i++) {
        if (!in_string) {
            in_string = body[i] == '"';
        } else if (body[i] == '"') {
            in_string = false;
        } else if (body[i] == '\\') {
            if (i + 5 < len && memcmp(body + i + 1, "u0000", 5) == 0)
                return i;
            i++; /* skip the escaped character, a backslash included */
        }
    }
    return len;
}

/* C strings (and PostgreSQL text) end at NUL, so a decoded \u0000 would cut a message short.
 * Returns a copy of body with each \u0000 escape turned into \ufffd (the same six bytes' length,
 * U+FFFD REPLACEMENT CHARACTER), or NULL when body has none or memory ran out (*oom).
 * docs/DECISIONS.md#nul-in-text: the raw receipt keeps the exact bytes. */
static char *replace_nul_escapes(const char *body, size_t len, bool *oom)
{
    size_t at = first_nul_escape(body, len, 0, false);
    char *copy;
    if (at == len)
        return NULL;
    copy = malloc(len + 1);
    if (copy == NULL) {
        *oom = true;
        return NULL;
    }
    memcpy(copy, body, len);
    copy[len] = '\0';
    /* the scan resumes after the escape, still inside the same string */
    for (; at < len; at = first_nul_escape(copy, len, at + 6, true))
        memcpy(copy + at, "\\ufffd", 6);
    return copy;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first key that appears twice in some object of the tree, or NULL. *oom on allocation
 * failure. Recursion is bounded by the nesting check done before parsing. */
static const char *duplicate_key(const cJSON *item, bool *oom)
{
    const cJSON *c;
    if (cJSON_IsObject(item)) {
        int n = cJSON_GetArraySize(item);
        if (n > 1) {
            const char **names = malloc((size_t)n * sizeof(*names));
            int k = 0;
            if (names == NULL) {
                *oom = true;
                return NULL;
            }
            cJSON_ArrayForEach(c, item)
                names[k++] = c->string;
            qsort(names, (size_t)k, sizeof(*names), cmp_names);
            for (int i = 1; i < k; i++) {
                if (strcmp(names[i - 1], names[i]) == 0) {
                    const char *dup = names[i];
                    free(names);
                    return dup;
                }
            }
            free(names);
        }
    }
    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        cJSON_ArrayForEach(c, item)
        {
            const char *dup = duplicate_key(c, oom);
            if (dup != NULL || *oom)
                return dup;
        }
    }
    return NULL;
}

cJSON *ct_json_parse_strict(const char *body, size_t len, int max_depth, struct ct_err *err)
{
    const char *end = NULL, *dup;
    bool oom = false;
    cJSON *j = NULL;
    char *copy = NULL;

    if (nesting(body, len, max_depth) > max_depth) {
        ct_err_set(err, CT_E_INVALID, "too_deep", "JSON is nested more than %d levels deep",
                   max_depth);
        return NULL;
    }
    copy = replace_nul_escapes(body, len, &oom);
    if (oom) {
        ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        return NULL;
    }
    if (copy != NULL)
        body = copy;
    j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (j == NULL) {
        free(copy);
        ct_err_set(err, CT_E_INVALID, "invalid_json", "body is not valid JSON");
        return NULL;
    }
    /* cJSON stops after the first value; anything but white space after it is not JSON */
    for (; end < body + len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            free(copy);
            cJSON_Delete(j);
            ct_err_set(err, CT_E_INVALID, "invalid_json",
                       "body is not valid JSON: bytes follow the value");
            return NULL;
        }
    }
    free(copy); /* cJSON copied every string it kept */
    dup = duplicate_key(j, &oom);
    if (dup != NULL || oom) {
        if (oom)
            ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        else
            ct_err_set(err, CT_E_INVALID, "duplicate_key",
                       "JSON object has the key \"%.40s\" more than once", dup);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

ct_rc ct_json_only(const cJSON *obj, const char *const *allowed, struct ct_err *err)
{
    const cJSON *m;
    if (!cJSON_IsObject(obj)) /* members of anything else have no names to check */
        return ct_err_set(err, CT_E_INVALID, "invalid_json", "expected a JSON object");
    cJSON_ArrayForEach(m, obj)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
            ok = strcmp(m->string, *a) == 0;
        if (!ok)
            return ct_err_set(err, CT_E_INVALID, "unknown_field", "unrecognized field \"%.40s\"",
                              m->string);
    }
    return CT_OK;
}

ct_rc ct_json_str(const cJSON *obj, const char *name, bool required, size_t max,
                  const char **out, struct ct_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            return ct_err_set(err, CT_E_INVALID, strcmp(name, "reason") == 0 ? "reason_required"
                                                                             : "missing_field",
                              "%s is required", name);
        return CT_OK;
    }
    if (!cJSON_IsString(v))
        return ct_err_set(err, CT_E_INVALID, "wrong_type", "%s must be a string", name);
    if (strlen(v->valuestring) > max)
        return ct_err_set(err, CT_E_INVALID, "too_long", "%s is longer than %zu bytes", name, max);
    *out = v->valuestring;
    return CT_OK;
}

ct_rc ct_json_int(const cJSON *obj, const char *name, bool required, long long lo, long long hi,
                  bool *present, long long *out, struct ct_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *present = false;
    if (v == NULL || cJSON_IsNull(v)) {
        if (required)
            return ct_err_set(err, CT_E_INVALID, "missing_field", "%s is required", name);
        return CT_OK;
    }
    /* range first: casting an out-of-range double to an integer is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)lo && v->valuedouble <= (double)hi) ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return ct_err_set(err, CT_E_INVALID, "wrong_type",
                          "%s must be an integer from %lld to %lld", name, lo, hi);
    *present = true;
    *out = (long long)v->valuedouble;
    return CT_OK;
}

/* v in decimal into out (at least 21 bytes); returns out. */
static char *format_ll(long long v, char out[static 21])
{
    char tmp[21];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    size_t n = 0, k = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        out[k++] = '-';
    while (n > 0)
        out[k++] = tmp[--n];
    out[k] = '\0';
    return out;
}

cJSON *ct_json_int_item(long long v)
{
    char num[21];
    return cJSON_CreateRaw(format_ll(v, num));
}

bool ct_json_add_int(cJSON *obj, const char *key, long long v)
{
    char num[21];
    return cJSON_AddRawToObject(obj, key, format_ll(v, num)) != NULL;
}
