/*
 * QEMU TCG plugin: counts the guest instructions executed between entering the function at
 * `begin` and entering the one at `end` (addresses from the image's symbol table, Thumb bit
 * clear) and, when the emulator exits, prints one line through qemu_plugin_outs (with
 * `-d plugin`: QEMU's log, stderr or the `-D` file):
 *
 *     insn_count N begin B end E
 *
 * N instructions counted, B and E the number of times each marker was entered.
 *
 * Each translated block adds its instruction count when it starts executing. A call target
 * always starts a block and every block ends at a branch, so the markers' first blocks switch
 * counting on and off exactly; everything executed in between, callees included, is counted.
 * Debian's QEMU 7.2 ships no qemu-plugin.h, so the few v1 API functions used are declared here.
 * Build: gcc -O2 -fPIC -shared insn_count.c -o insn_count.so
 * Use:   qemu-system-arm ... -plugin insn_count.so,begin=0x1234,end=0x1240 -d plugin
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t begin, end, count, begun, ended;
static int counting;

/* A block's start address (32-bit guests) in the high bits, its instruction count (at most
 * 512 in QEMU 7.2) in the low 16: the block's identity travels as the callback's userdata. */
#define COUNT_BITS 16

static void on_exec(unsigned int vcpu, void *userdata)
{
    const uint64_t packed = (uint64_t)(uintptr_t)userdata;
    const uint64_t pc = packed >> COUNT_BITS;
    (void)vcpu;
    if (pc == begin) {
        counting = 1;
        ++begun;
    } else if (pc == end) {
        counting = 0;
        ++ended;
    }
    if (counting) {
        count += packed & ((1u << COUNT_BITS) - 1);
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    const uint64_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)((pc << COUNT_BITS) | n));
}

static void on_quit(qemu_plugin_id_t id, void *userdata)
{
    char line[96];
    (void)id;
    (void)userdata;
    snprintf(line, sizeof line, "insn_count %llu begin %llu end %llu\n", (unsigned long long)count,
             (unsigned long long)begun, (unsigned long long)ended);
    qemu_plugin_outs(line);
}

static int parse_address(const char *text, uint64_t *address)
{
    char *rest;
    *address = strtoull(text, &rest, 0);
    return *text != '\0' && *rest == '\0' && *address != 0 && *address < (UINT64_C(1) << (64 - COUNT_BITS));
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    int i;
    int have_begin = 0;
    int have_end = 0;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "begin=", 6) == 0) {
            have_begin = parse_address(argv[i] + 6, &begin);
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            have_end = parse_address(argv[i] + 4, &end);
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (expected begin=ADDRESS,end=ADDRESS)\n", argv[i]);
            return -1;
        }
    }
    if (!have_begin || !have_end || begin == end) {
        fprintf(stderr, "insn_count: needs two different non-zero addresses: begin=ADDRESS,end=ADDRESS\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_quit, NULL);
    return 0;
}
