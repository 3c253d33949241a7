// bench/pages_filter.c: reads a valgrind lackey trace (--trace-mem=yes --trace-syscalls=yes)
// on stdin and counts the distinct 4 KiB pages of code and of data a thread touches between two
// of its system calls (bench/pages.sh runs it; not a tool of its own).
//
// Where every entry to the kernel empties the TLB (page-table isolation without PCID, as on this
// VM), each page a server touches between two calls costs a page walk on its first touch, so
// the count per interval is what a per-message path spreads over, beyond its instructions.
//
// The trace: "I  ADDR,SIZE" an instruction, " L ADDR,SIZE", " S ...", " M ..." a load, store or
// modify, "SYSCALL[PID,TID](NR) ..." a system call (a blocking one on two lines, its start and
// its end, with other threads' trace possibly between them). An interval is the trace between
// two SYSCALL lines; it belongs to the thread named by the first of them. Calls that a native
// run makes in user space, through the vDSO (clock_gettime, gettimeofday, time, getcpu), are
// system calls under valgrind: they do not end an interval here.
//
// Counting starts at SIGUSR1 and ends at SIGUSR2 (bench/pages.sh sends them once the load is
// on); the first 1,000 intervals after SIGUSR1 pick the thread (the one with the most of them,
// an event loop's under load), and only that thread's intervals count after them. At SIGUSR2
// it writes its report to the file named by its one argument and goes on reading until the
// trace ends, so that valgrind never blocks on a full pipe:
//
//   thread TID
//   intervals N
//   instructions_per_interval X
//   code_pages_per_interval X        (the mean over the intervals)
//   data_pages_per_interval X
//   syscall NAME N                   (the calls that ended the intervals, most first)
//   page code|data 0xPAGE SHARE 0xIP:N...  (every page touched in 5% of the intervals or more,
//                                          with the share of intervals that touched it, and the
//                                          first 8 instructions seen touching it first in an
//                                          interval, each with how often it did: for code the
//                                          ones that entered the page)
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kPickIntervals = 1000, kMaxThreads = 256, kTableBits = 20, kMaxIps = 8 };

static volatile sig_atomic_t counting_requested = 0;
static volatile sig_atomic_t report_requested = 0;

static void OnStart(int signo) {
  (void)signo;
  counting_requested = 1;
}
static void OnReport(int signo) {
  (void)signo;
  report_requested = 1;
}

// A page, with the intervals that touched it and the instructions that touched it first.
typedef struct {
  uint64_t page;  // the key: (address >> 12) + 1, shifted left by one, or'ed with is_code (0: empty)
  int is_code;
  uint64_t stamp;  // the last interval that touched it
  uint64_t intervals;
  uint64_t ips[kMaxIps];
  uint64_t ip_counts[kMaxIps];
} PageEntry;

static PageEntry *table;
static uint64_t table_used;

static PageEntry *FindPage(uint64_t page, int is_code) {
  uint64_t key = ((page + 1) << 1) | (uint64_t)is_code;
  uint64_t mask = (1u << kTableBits) - 1;
  uint64_t slot = (key * 0x9E3779B97F4A7C15ull) >> (64 - kTableBits);
  while (table[slot].page != 0 && table[slot].page != key) slot = (slot + 1) & mask;
  if (table[slot].page == 0) {
    if (table_used * 2 > mask) {
      fprintf(stderr, "pages_filter: more than %u distinct pages\n", 1u << (kTableBits - 1));
      exit(1);
    }
    table_used++;
    table[slot].page = key;
    table[slot].is_code = is_code;
  }
  return &table[slot];
}

// The one interval being read.
static uint64_t interval_stamp = 1;
static uint64_t interval_code_pages, interval_data_pages, interval_instructions;
static uint64_t last_ip;

// What the counted intervals add up to.
static int chosen_thread = -1;
static uint64_t intervals, code_pages, data_pages, instructions;
static uint64_t thread_intervals[kMaxThreads];
static uint64_t picked_intervals;

typedef struct {
  char name[32];
  uint64_t count;
} SyscallCount;
static SyscallCount syscalls[64];
static int syscall_kinds;

static void Touch(uint64_t address, uint64_t size, int is_code) {
  uint64_t first = address >> 12, last = (address + (size ? size - 1 : 0)) >> 12;
  for (uint64_t page = first; page <= last; page++) {
    PageEntry *entry = FindPage(page, is_code);
    if (entry->stamp == interval_stamp) continue;
    entry->stamp = interval_stamp;
    entry->intervals++;
    if (is_code) {
      interval_code_pages++;
    } else {
      interval_data_pages++;
    }
    int i = 0;
    while (i < kMaxIps && entry->ips[i] != last_ip && entry->ips[i] != 0) i++;
    if (i < kMaxIps) {
      entry->ips[i] = last_ip;
      entry->ip_counts[i]++;
    }
  }
}

// A call the vDSO answers in a native run: "SYSCALL[PID,TID](NR) sys_NAME ..." with NR one of
// clock_gettime (228), gettimeofday (96), time (201) or getcpu (309) on x86-64.
static int IsVdsoCall(const char *line) {
  const char *number = strchr(line, '(');
  if (number == NULL) return 0;
  int nr = atoi(number + 1);
  return nr == 228 || nr == 96 || nr == 201 || nr == 309;
}

static void CountSyscall(const char *line) {
  const char *name = strstr(line, ") sys_");
  if (name == NULL) return;  // a blocking call's end: its start named it
  name += 2;
  size_t length = strcspn(name, " (");
  if (length >= sizeof syscalls[0].name) length = sizeof syscalls[0].name - 1;
  for (int i = 0; i < syscall_kinds; i++) {
    if (strlen(syscalls[i].name) == length && strncmp(syscalls[i].name, name, length) == 0) {
      syscalls[i].count++;
      return;
    }
  }
  if (syscall_kinds < 64) {
    memcpy(syscalls[syscall_kinds].name, name, length);
    syscalls[syscall_kinds].name[length] = '\0';
    syscalls[syscall_kinds++].count = 1;
  }
}

static int CompareSyscalls(const void *a, const void *b) {
  uint64_t x = ((const SyscallCount *)a)->count, y = ((const SyscallCount *)b)->count;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void Report(const char *path) {
  FILE *out = fopen(path, "w");
  if (out == NULL) {
    perror(path);
    exit(1);
  }
  double n = intervals ? (double)intervals : 1.0;
  fprintf(out, "thread %d\nintervals %llu\n", chosen_thread, (unsigned long long)intervals);
  fprintf(out, "instructions_per_interval %.1f\n", (double)instructions / n);
  fprintf(out, "code_pages_per_interval %.2f\n", (double)code_pages / n);
  fprintf(out, "data_pages_per_interval %.2f\n", (double)data_pages / n);
  qsort(syscalls, (size_t)syscall_kinds, sizeof syscalls[0], CompareSyscalls);
  for (int i = 0; i < syscall_kinds; i++) {
    fprintf(out, "syscall %s %llu\n", syscalls[i].name, (unsigned long long)syscalls[i].count);
  }
  for (uint64_t slot = 0; slot < (1u << kTableBits); slot++) {
    const PageEntry *entry = &table[slot];
    if (entry->page == 0 || entry->intervals * 20 < intervals) continue;
    fprintf(out, "page %s 0x%llx %.3f", entry->is_code ? "code" : "data",
            (unsigned long long)(((entry->page >> 1) - 1) << 12), (double)entry->intervals / n);
    for (int i = 0; i < kMaxIps && entry->ips[i] != 0; i++) {
      fprintf(out, " 0x%llx:%llu", (unsigned long long)entry->ips[i], (unsigned long long)entry->ip_counts[i]);
    }
    fputc('\n', out);
  }
  fclose(out);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: pages_filter REPORT_FILE < lackey-trace\n");
    return 2;
  }
  table = calloc(1u << kTableBits, sizeof *table);
  if (table == NULL) return 1;
  signal(SIGUSR1, OnStart);
  signal(SIGUSR2, OnReport);
  static char line[65536];
  int thread = -1;  // the thread the current interval belongs to
  int started = 0, reported = 0;
  while (fgets(line, sizeof line, stdin) != NULL) {
    int counted = started && !reported && chosen_thread >= 0 && thread == chosen_thread;
    if (line[0] == 'I' || (line[0] == ' ' && (line[1] == 'L' || line[1] == 'S' || line[1] == 'M'))) {
      if (!counted) continue;
      char *end;
      uint64_t address = strtoull(line + 3, &end, 16);
      uint64_t size = *end == ',' ? strtoull(end + 1, NULL, 10) : 1;
      if (line[0] == 'I') {
        last_ip = address;
        interval_instructions++;
        Touch(address, size, 1);
      } else {
        Touch(address, size, 0);
      }
      continue;
    }
    if (strncmp(line, "SYSCALL[", 8) != 0 || IsVdsoCall(line)) continue;
    // An interval ends here.
    if (counted && interval_instructions > 0) {
      intervals++;
      code_pages += interval_code_pages;
      data_pages += interval_data_pages;
      instructions += interval_instructions;
      CountSyscall(line);
    }
    interval_stamp++;
    interval_code_pages = interval_data_pages = interval_instructions = 0;
    char *comma = strchr(line + 8, ',');
    thread = comma ? atoi(comma + 1) : -1;
    if (report_requested && !reported) {
      if (!started || chosen_thread < 0) {
        fprintf(stderr, "pages_filter: asked to report before counting began\n");
        return 1;
      }
      Report(argv[1]);
      reported = 1;
    }
    if (counting_requested && !started) {
      started = 1;
      continue;
    }
    if (started && chosen_thread < 0 && thread >= 0 && thread < kMaxThreads) {
      thread_intervals[thread]++;
      if (++picked_intervals == kPickIntervals) {
        for (int t = 0; t < kMaxThreads; t++) {
          if (chosen_thread < 0 || thread_intervals[t] > thread_intervals[chosen_thread]) chosen_thread = t;
        }
      }
    }
  }
  if (!reported) {
    fprintf(stderr, "pages_filter: the trace ended before the report was asked for\n");
    return 1;
  }
  return 0;
}
