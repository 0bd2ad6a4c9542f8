/* Start-up for test images on emulated Cortex-M boards (not part of generated firmware).
 * The vector table gives the initial stack pointer and the reset handler; the handler copies
 * .data from flash, enables the FPU on hard-float builds, and enters newlib's _start, which
 * clears .bss, calls main and exits through semihosting with main's return code. */
#include <stdint.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end;
extern void _start(void);
void reset_handler(void);

static void fault_handler(void)
{
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top, reset_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, fault_handler, 0, 0, 0, 0, fault_handler, fault_handler, 0,
    fault_handler, fault_handler,
};

void reset_handler(void)
{
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) {
        *dst++ = *src++;
    }
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to CP10 and CP11 */
    __asm volatile("dsb\n\tisb");
#endif
    _start();
}
