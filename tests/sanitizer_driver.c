/*
 * Test harness of tests/test_sanitizers.py (not part of the generated folder): runs a
 * generated model built with AddressSanitizer and UndefinedBehaviorSanitizer as the main
 * program.
 *
 *     driver invoke        < inputs > outputs   (NAME_invoke)
 *     driver invoke_float  < inputs > outputs   (NAME_invoke_float of --float-io)
 *
 * stdin holds whole inferences back to back: each model input's bytes in the model's order.
 * stdout receives each inference's outputs the same way. Every input and output lives in a
 * heap block of its exact size, so a kernel that reads or writes one byte past a caller's
 * tensor is caught; an input the model changed, or a status other than 0, exits with 3.
 *
 * sanitizer_model.h (written by the test next to the model's files) defines
 * DRIVER_INPUTS, DRIVER_OUTPUTS, driver_input_sizes[], driver_output_sizes[] (elements),
 * driver_invoke(in, out) with DRIVER_INVOKE_ELEMENT (bytes per element) and, for a model
 * with --float-io, driver_invoke_float(in, out) and DRIVER_HAS_FLOAT. DRIVER_ARENA, when
 * defined, names the arena of a model built with --arena extern: it is filled with 0xA5 before
 * every inference, so that a kernel reading arena bytes it has not written in the same
 * inference shows in the outputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sanitizer_model.h"

static unsigned char *read_all(FILE *f, size_t *length)
{
    size_t capacity = 1 << 16;
    size_t used = 0;
    unsigned char *data = malloc(capacity);
    while (data != NULL) {
        size_t got = fread(data + used, 1, capacity - used, f);
        used += got;
        if (got == 0) {
            break;
        }
        if (used == capacity) {
            unsigned char *bigger = realloc(data, capacity * 2);
            if (bigger == NULL) {
                free(data);
                return NULL;
            }
            data = bigger;
            capacity *= 2;
        }
    }
    *length = used;
    return data;
}

int main(int argc, char **argv)
{
    typedef int (*invoke_fn)(void *const *in, void *const *out);
    invoke_fn invoke = driver_invoke;
    size_t element = DRIVER_INVOKE_ELEMENT;
    size_t case_bytes = 0;
    size_t length = 0;
    size_t offset;
    size_t i;
    unsigned char *data;
    void *in[DRIVER_INPUTS];
    void *out[DRIVER_OUTPUTS];
    unsigned char *copy[DRIVER_INPUTS];

    if (argc != 2 || (strcmp(argv[1], "invoke") != 0 && strcmp(argv[1], "invoke_float") != 0)) {
        fprintf(stderr, "usage: %s invoke|invoke_float < inputs > outputs\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "invoke_float") == 0) {
#ifdef DRIVER_HAS_FLOAT
        invoke = driver_invoke_float;
        element = sizeof(float);
#else
        fprintf(stderr, "this model has no float I/O wrapper\n");
        return 2;
#endif
    }
    for (i = 0; i < DRIVER_INPUTS; ++i) {
        case_bytes += driver_input_sizes[i] * element;
    }
    data = read_all(stdin, &length);
    if (data == NULL || case_bytes == 0 || length % case_bytes != 0) {
        fprintf(stderr, "stdin: %lu bytes, not a whole number of %lu-byte inferences\n",
                (unsigned long)length, (unsigned long)case_bytes);
        free(data);
        return 2;
    }
    for (offset = 0; offset < length; offset += case_bytes) {
        size_t at = offset;
        int status;
        for (i = 0; i < DRIVER_INPUTS; ++i) {
            size_t bytes = driver_input_sizes[i] * element;
            in[i] = malloc(bytes);
            copy[i] = malloc(bytes);
            if (in[i] == NULL || copy[i] == NULL) {
                return 2;
            }
            memcpy(in[i], data + at, bytes);
            memcpy(copy[i], data + at, bytes);
            at += bytes;
        }
        for (i = 0; i < DRIVER_OUTPUTS; ++i) {
            size_t bytes = driver_output_sizes[i] * element;
            out[i] = malloc(bytes);
            if (out[i] == NULL) {
                return 2;
            }
            memset(out[i], 0xA5, bytes); /* neither int8 0 nor a small float */
        }
#ifdef DRIVER_ARENA
        memset(DRIVER_ARENA, 0xA5, sizeof DRIVER_ARENA);
#endif
        status = invoke(in, out);
        if (status != 0) {
            fprintf(stderr, "%s returned %d\n", argv[1], status);
            return 3;
        }
        for (i = 0; i < DRIVER_INPUTS; ++i) {
            if (memcmp(in[i], copy[i], driver_input_sizes[i] * element) != 0) {
                fprintf(stderr, "%s changed input %lu\n", argv[1], (unsigned long)i);
                return 3;
            }
            free(in[i]);
            free(copy[i]);
        }
        for (i = 0; i < DRIVER_OUTPUTS; ++i) {
            if (fwrite(out[i], element, driver_output_sizes[i], stdout) != driver_output_sizes[i]) {
                return 2;
            }
            free(out[i]);
        }
    }
    free(data);
    return fflush(stdout) == 0 ? 0 : 2;
}
