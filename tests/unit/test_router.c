/* test_router.c: route matching, and the route table against docs/openapi.yaml: an endpoint
 * missing from either side fails here. Runs from the repository root. */
#include <stdlib.h>

#include "casetrail/router.h"
#include "t.h"

/* Collects "METHOD /path" pairs from the paths section of the OpenAPI file. */
static int openapi_ops(char ops[][200], int max)
{
    FILE *f = fopen("docs/openapi.yaml", "r");
    char line[512], path[160] = "";
    int n = 0;
    bool in_paths = false;
    if (f == NULL) {
        fprintf(stderr, "cannot open docs/openapi.yaml\n");
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != ' ' && line[0] != '\0' && line[0] != '#') {
            in_paths = strcmp(line, "paths:") == 0;
            continue;
        }
        if (!in_paths)
            continue;
        if (strncmp(line, "  /", 3) == 0 && line[strlen(line) - 1] == ':') {
            snprintf(path, sizeof(path), "%.*s", (int)strlen(line) - 3, line + 2);
        } else if (strncmp(line, "    ", 4) == 0 && line[4] != ' ' && path[0] != '\0') {
            static const char *methods[] = {"get:", "post:", "put:", "delete:", "patch:"};
            for (int m = 0; m < 5; m++) {
                if (strcmp(line + 4, methods[m]) == 0 && n < max) {
                    char up[8];
                    size_t k;
                    for (k = 0; methods[m][k] != ':'; k++)
                        up[k] = (char)(methods[m][k] - 32);
                    up[k] = '\0';
                    snprintf(ops[n++], 200, "%s %s", up, path);
                }
            }
        }
    }
    fclose(f);
    return n;
}

int main(void)
{
    char params[CT_ROUTE_MAX_PARAMS][128];
    int np;
    bool known;
    size_t n;
    const struct ct_route *routes = ct_router_routes(&n);

    CHECK(ct_router_match("GET", "/healthz", params, &np, &known) != NULL);
    CHECK(ct_router_match("HEAD", "/healthz", params, &np, &known) != NULL);
    CHECK(ct_router_match("POST", "/healthz", params, &np, &known) == NULL && known);
    CHECK(ct_router_match("GET", "/nope", params, &np, &known) == NULL && !known);
    CHECK(ct_router_match("GET", "/healthz/", params, &np, &known) == NULL);
    CHECK(ct_router_match("GET", "/api/me", params, &np, &known) != NULL && np == 0);

    static char ops[128][200];
    int nops = openapi_ops(ops, 128);
    CHECK(nops > 0);
    for (size_t i = 0; i < n; i++) {
        char want[200];
        bool found = false;
        snprintf(want, sizeof(want), "%s %s", routes[i].method, routes[i].pattern);
        for (int k = 0; k < nops; k++)
            found = found || strcmp(ops[k], want) == 0;
        if (!found) {
            fprintf(stderr, "route %s is not in docs/openapi.yaml\n", want);
            t_failures++;
        }
    }
    for (int k = 0; k < nops; k++) {
        bool found = false;
        for (size_t i = 0; i < n; i++) {
            char have[200];
            snprintf(have, sizeof(have), "%s %s", routes[i].method, routes[i].pattern);
            found = found || strcmp(ops[k], have) == 0;
        }
        if (!found) {
            fprintf(stderr, "docs/openapi.yaml documents %s, which the router lacks\n", ops[k]);
            t_failures++;
        }
    }
    T_DONE();
}
