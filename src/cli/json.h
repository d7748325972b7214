/*
 * json.h - the little JSON the CLI writes: one object per line (JSON Lines),
 * so a script can read `cgrad train --json` as it goes.
 */
#ifndef CGRAD_CLI_JSON_H
#define CGRAD_CLI_JSON_H

#include <stdio.h>

/* s as a JSON string, quoted, with ", \ and control characters escaped. */
void cg_json_string(FILE *f, const char *s);
/* v with enough digits to read back the float it came from (%.9g: a float
 * needs 9 significant digits); NaN and infinities, which JSON lacks, as null. */
void cg_json_number(FILE *f, double v);

#endif
