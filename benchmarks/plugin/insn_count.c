/*
 * QEMU TCG plugin: counts the guest instructions executed between entering the function at
 * `begin` and entering the one at `end` (addresses from the image's symbol table), and prints
 * "insn_count N" through qemu_plugin_outs when the emulator exits (-d plugin: on stderr).
 *
 * Each translated block reports its instruction count when it executes; a block starts at a
 * call target, so the marker functions' first blocks switch counting on and off exactly.
 * Debian's QEMU 7.2 ships no qemu-plugin.h, so the few v1 API functions used are declared here.
 * Build: gcc -O2 -fPIC -shared insn_count.c -o insn_count.so
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

static uint64_t begin, end, count;
static int counting;

/* userdata: the block's start address in the high bits, its instruction count in the low 16 */
static void on_exec(unsigned int vcpu, void *userdata)
{
    const uint64_t packed = (uint64_t)(uintptr_t)userdata;
    const uint64_t pc = packed >> 16;
    (void)vcpu;
    if (pc == begin) {
        counting = 1;
    } else if (pc == end) {
        counting = 0;
    }
    if (counting) {
        count += packed & 0xFFFF;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    const uint64_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)((pc << 16) | n));
}

static void on_quit(qemu_plugin_id_t id, void *userdata)
{
    char line[64];
    (void)id;
    (void)userdata;
    snprintf(line, sizeof line, "insn_count %llu\n", (unsigned long long)count);
    qemu_plugin_outs(line);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv)
{
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "begin=", 6) == 0) {
            begin = strtoull(argv[i] + 6, NULL, 0);
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            end = strtoull(argv[i] + 4, NULL, 0);
        }
    }
    if (!begin || !end) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_quit, NULL);
    return 0;
}
