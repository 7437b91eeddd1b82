/* Facts about the machine and this process that timings, memory checks and
 * provenance need: clocks, available memory, peak resident memory. */
#ifndef CTX_HOST_H
#define CTX_HOST_H

#include <stddef.h>

double host_monotonic_s(void);      /* for durations */
double host_wall_s(void);           /* seconds since the epoch, for timestamps */
double host_cpu_s(void);            /* CPU seconds of the whole process (every thread) so far */
/* MemAvailable from /proc/meminfo in bytes; SIZE_MAX when unknown (never refuse on a guess). */
size_t host_mem_available(void);
/* The 1-minute load average (/proc/loadavg): runnable threads of every process, this
 * one's included; NAN when unknown. */
double host_load_avg(void);
/* Peak resident memory of this process in MiB (VmHWM); NAN when unknown. */
double host_peak_rss_mib(void);
/* Sets the peak back to the current RSS so the next phase reports its own peak
 * (Linux >= 4.0; elsewhere the peak stays the process's). */
void host_reset_peak_rss(void);

#endif
