/* params.c: building query parameter lists, so numbers become text in one place. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_internal.h"

/* The next slot; asserts there is one (parameter counts are fixed by the SQL text). */
static int slot(struct ct_params *p)
{
    assert(p->n < CT_PARAMS_MAX);
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    return p->n++;
}

void ct_param_str(struct ct_params *p, const char *s)
{
    p->v[slot(p)] = s;
}

void ct_param_ll(struct ct_params *p, long long v)
{
    int i = slot(p);
    snprintf(p->text[i], sizeof(p->text[i]), "%lld", v);
    p->v[i] = p->text[i];
}

void ct_param_id(struct ct_params *p, long long v)
{
    if (v == 0)
        ct_param_str(p, NULL);
    else
        ct_param_ll(p, v);
}

void ct_param_bool(struct ct_params *p, bool v)
{
    ct_param_str(p, v ? "t" : "f");
}

void ct_param_ts(struct ct_params *p, bool present, long long us)
{
    if (!present) {
        ct_param_str(p, NULL);
        return;
    }
    int i = slot(p);
    ct_store_fmt_ts(us, p->text[i]);
    p->v[i] = p->text[i];
}

void ct_param_bin(struct ct_params *p, const void *data, size_t len)
{
    int i = slot(p);
    p->v[i] = data;
    p->len[i] = (int)len;
    p->fmt[i] = 1;
}

PGresult *ct_tx_query(struct ct_tx *tx, const char *sql, const struct ct_params *p,
                      struct ct_err *err)
{
    return ct_tx_exec_bin(tx, sql, p->n, p->v, p->len, p->fmt, err);
}

bool ct_json_add_str(cJSON *obj, const char *key, const char *v)
{
    return (v != NULL ? cJSON_AddStringToObject(obj, key, v)
                      : cJSON_AddNullToObject(obj, key)) != NULL;
}

bool ct_json_add_raw(cJSON *obj, const char *key, const char *json)
{
    return (json != NULL ? cJSON_AddRawToObject(obj, key, json)
                         : cJSON_AddNullToObject(obj, key)) != NULL;
}

bool ct_json_append(cJSON *arr, cJSON *item)
{
    if (arr != NULL && item != NULL && cJSON_AddItemToArray(arr, item))
        return true;
    cJSON_Delete(item);
    return false;
}

PGresult *ct_tx_query_json(struct ct_tx *tx, const char *sql, const cJSON *a, const cJSON *b,
                           struct ct_err *err)
{
    struct ct_params p = {0};
    char *ja = a != NULL ? cJSON_PrintUnformatted(a) : NULL;
    char *jb = b != NULL ? cJSON_PrintUnformatted(b) : NULL;
    PGresult *res = NULL;
    if (a == NULL || ja == NULL || (b != NULL && jb == NULL)) {
        ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        goto out;
    }
    ct_param_str(&p, ja);
    if (b != NULL)
        ct_param_str(&p, jb);
    res = ct_tx_query(tx, sql, &p, err);
out:
    free(ja);
    free(jb);
    return res;
}

ct_rc ct_tx_command(struct ct_tx *tx, const char *sql, const struct ct_params *p,
                    struct ct_err *err)
{
    PGresult *res = ct_tx_query(tx, sql, p, err);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    return CT_OK;
}

bool ct_tx_step_json(struct ct_tx_step *st, const char *sql, cJSON *arr)
{
    st->sql = sql;
    st->owned = arr != NULL ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    if (st->owned == NULL)
        return false;
    st->p = (struct ct_params){0};
    ct_param_str(&st->p, st->owned);
    return true;
}
