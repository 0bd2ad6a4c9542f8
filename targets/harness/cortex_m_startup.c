/* Start-up for test images on emulated Cortex-M boards (not part of generated firmware).
 * The vector table gives the initial stack pointer and the reset handler; the handler copies
 * .data from flash, enables the FPU on hard-float builds, turns on the traps that firmware
 * projects commonly enable, and enters newlib's _start, which clears .bss, calls main and exits
 * through semihosting with main's return code.
 *
 * Traps: on ARMv7-M and ARMv8-M Mainline, CCR.UNALIGN_TRP (an unaligned LDR/LDRH/STR/STRH
 * faults) and CCR.DIV_0_TRP (SDIV/UDIV by zero faults), with the configurable faults enabled so
 * that each reports as itself. On ARMv6-M every unaligned access faults already and there is no
 * divide instruction. Any fault prints one line through semihosting (the exception, the fault
 * status registers and the faulting PC) and ends the emulator with status 1: a fault is a failed
 * run, never a hang.
 *
 * newlib, as built for these cores, makes unaligned accesses itself (memcpy on buffers of
 * different alignment, the stack frame of vfprintf), so the functions a test image calls from
 * the C library for copying and printing are defined here, built never to make one: memcpy,
 * memmove, memset, printf (%d %i %u %x %X %c %s %%, flags 0 and -, width, l), putchar and puts,
 * writing through semihosting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end;
extern void _start(void);
void reset_handler(void);
void fault_handler(void);
void fault_report(const uint32_t *frame, uint32_t exception);
static void out_flush(void);

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CCR_UNALIGN_TRP (1u << 3)
#define CCR_DIV_0_TRP (1u << 4)
#define SHCSR_FAULTS_ENA (7u << 16) /* MemManage, BusFault, UsageFault */

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
    defined(__ARM_ARCH_8_1M_MAIN__)
#define HARNESS_CONFIGURABLE_TRAPS 1
#else
#define HARNESS_CONFIGURABLE_TRAPS 0
#endif

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top, reset_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, fault_handler, fault_handler, 0, 0, 0, fault_handler, fault_handler, 0,
    fault_handler, fault_handler,
};

#if HARNESS_CONFIGURABLE_TRAPS
/* The same table in RAM (.data), where VTOR points before the traps go on: on QEMU's
 * mps3-an547 (Cortex-M55) data reads of the code memory, which the core's vector fetch is,
 * do not see the image, and a fault would lock the core up instead of reaching the handler. */
static void (*ram_vectors[16])(void) __attribute__((aligned(128))) = {
    0, reset_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler,
    0, 0, 0, fault_handler, fault_handler, 0, fault_handler, fault_handler,
};
#endif

/* A semihosting call: operation in r0, argument in r1, result in r0. */
static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static char *put_text(char *at, const char *text)
{
    while (*text) {
        *at++ = *text++;
    }
    return at;
}

static char *put_hex(char *at, uint32_t v)
{
    int i;
    at = put_text(at, "0x");
    for (i = 28; i >= 0; i -= 4) {
        *at++ = "0123456789abcdef"[(v >> i) & 0xFu];
    }
    return at;
}

/* The exception frame the core stacked (r0-r3, r12, lr, pc, xpsr) and the exception number. */
void fault_report(const uint32_t *frame, uint32_t exception)
{
    static const char *const names[] = {"exception 0", "reset", "NMI", "HardFault", "MemManage", "BusFault",
                                        "UsageFault", "SecureFault"};
    char line[160], *at = line;
    out_flush(); /* what the test printed before the fault */
    at = put_text(at, "fault: ");
    at = put_text(at, exception < 8 ? names[exception] : "exception");
    at = put_text(at, " pc=");
    at = put_hex(at, frame[6]);
#if HARNESS_CONFIGURABLE_TRAPS
    at = put_text(at, " cfsr=");
    at = put_hex(at, SCB_CFSR);
    at = put_text(at, " hfsr=");
    at = put_hex(at, SCB_HFSR);
    if (SCB_CFSR & (1u << 24)) {
        at = put_text(at, " (unaligned access)");
    }
    if (SCB_CFSR & (1u << 25)) {
        at = put_text(at, " (divide by zero)");
    }
#endif
    at = put_text(at, "\n");
    *at = '\0';
    semihost(0x04u /* SYS_WRITE0 */, line);
    /* SYS_EXIT with ADP_Stopped_RunTimeErrorUnknown: QEMU exits with status 1 */
    semihost(0x18u, (const void *)(uintptr_t)0x20023u);
    for (;;) {
    }
}

/* Which stack holds the frame (EXC_RETURN bit 2), then the C report; Thumb-1 only, for v6-M. */
__attribute__((naked)) void fault_handler(void)
{
    __asm__ volatile(
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, msp\n"
        "2:\n\t"
        "mrs r1, ipsr\n\t"
        "ldr r2, =fault_report\n\t"
        "bx r2\n\t"
        ".ltorg");
}

void reset_handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) {
        *dst++ = *src++;
    }
#if defined(__ARM_FP)
    SCB_CPACR |= 0xFu << 20; /* full access to CP10 and CP11 */
    __asm__ volatile("dsb\n\tisb");
#endif
#if HARNESS_CONFIGURABLE_TRAPS
    SCB_VTOR = (uint32_t)(uintptr_t)ram_vectors;
    __asm__ volatile("dsb\n\tisb");
    SCB_SHCSR |= SHCSR_FAULTS_ENA;
    SCB_CCR |= CCR_UNALIGN_TRP | CCR_DIV_0_TRP;
    __asm__ volatile("dsb\n\tisb");
#endif
    _start();
}

/* The C library stand-ins. GCC must not turn their loops back into calls of themselves. */
#define HARNESS_LIBC __attribute__((optimize("no-tree-loop-distribute-patterns"), used))

HARNESS_LIBC void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if ((((uintptr_t)d ^ (uintptr_t)s) & 3u) == 0) {
        for (; n && ((uintptr_t)d & 3u); --n) {
            *d++ = *s++;
        }
        for (; n >= 4; n -= 4, d += 4, s += 4) {
            *(uint32_t *)(void *)d = *(const uint32_t *)(const void *)s;
        }
    }
    for (; n; --n) {
        *d++ = *s++;
    }
    return dst;
}

HARNESS_LIBC void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (d <= s || d >= s + n) {
        for (; n; --n) {
            *d++ = *s++;
        }
    } else {
        for (d += n, s += n; n; --n) {
            *--d = *--s;
        }
    }
    return dst;
}

HARNESS_LIBC void *memset(void *dst, int value, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const uint32_t word = 0x01010101u * (unsigned char)value;
    for (; n && ((uintptr_t)d & 3u); --n) {
        *d++ = (unsigned char)value;
    }
    for (; n >= 4; n -= 4, d += 4) {
        *(uint32_t *)(void *)d = word;
    }
    for (; n; --n) {
        *d++ = (unsigned char)value;
    }
    return dst;
}

static char out_line[257];
static size_t out_used;

static void out_flush(void)
{
    if (out_used >= sizeof out_line) { /* overwritten by a runaway store: nothing to trust */
        out_used = 0;
    }
    if (out_used) {
        out_line[out_used] = '\0';
        semihost(0x04u /* SYS_WRITE0 */, out_line);
        out_used = 0;
    }
}

static void out_char(char c)
{
    out_line[out_used++] = c;
    if (c == '\n' || out_used == sizeof out_line - 1) {
        out_flush();
    }
}

__attribute__((destructor)) static void out_at_exit(void)
{
    out_flush();
}

HARNESS_LIBC int putchar(int c)
{
    out_char((char)c);
    return (unsigned char)c;
}

HARNESS_LIBC int puts(const char *text)
{
    while (*text) {
        out_char(*text++);
    }
    out_char('\n');
    return 1;
}

/* One conversion: digits of v in `base`, sign, padding to `width` with '0' or ' ' (left with -) */
static int out_number(unsigned long v, int negative, unsigned base, const char *digits, int width, char pad,
                      int left)
{
    char buf[24];
    int n = 0, len, written = 0;
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    len = n + negative;
    if (negative && pad == '0') {
        out_char('-');
    }
    for (; !left && width > len; --width, ++written) {
        out_char(pad);
    }
    if (negative && pad != '0') {
        out_char('-');
    }
    while (n) {
        out_char(buf[--n]);
    }
    for (; left && width > len; --width, ++written) {
        out_char(' ');
    }
    return written + len;
}

HARNESS_LIBC int printf(const char *restrict format, ...)
{
    va_list args;
    int written = 0;
    va_start(args, format);
    for (; *format; ++format) {
        int width = 0, left = 0, is_long = 0;
        char pad = ' ';
        if (*format != '%') {
            out_char(*format);
            ++written;
            continue;
        }
        for (++format; *format == '0' || *format == '-'; ++format) {
            if (*format == '0') {
                pad = '0';
            } else {
                left = 1;
            }
        }
        for (; *format >= '0' && *format <= '9'; ++format) {
            width = 10 * width + (*format - '0');
        }
        if (*format == 'l') {
            is_long = 1;
            ++format;
        }
        if (left) {
            pad = ' ';
        }
        switch (*format) {
        case 'd':
        case 'i': {
            long v = is_long ? va_arg(args, long) : va_arg(args, int);
            unsigned long magnitude = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
            written += out_number(magnitude, v < 0, 10, "0123456789", width, pad, left);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            unsigned long v = is_long ? va_arg(args, unsigned long) : va_arg(args, unsigned);
            written += out_number(v, 0, *format == 'u' ? 10u : 16u,
                                  *format == 'X' ? "0123456789ABCDEF" : "0123456789abcdef", width, pad, left);
            break;
        }
        case 'c':
            out_char((char)va_arg(args, int));
            ++written;
            break;
        case 's': {
            const char *text = va_arg(args, const char *);
            for (; *text; ++text, ++written) {
                out_char(*text);
            }
            break;
        }
        case '%':
            out_char('%');
            ++written;
            break;
        default: /* a conversion the stand-in does not know: say so rather than print wrong text */
            out_flush();
            semihost(0x04u, "printf: unsupported conversion in a test image\n");
            semihost(0x18u, (const void *)(uintptr_t)0x20023u);
            break;
        }
        if (!*format) {
            break;
        }
    }
    va_end(args);
    return written;
}
