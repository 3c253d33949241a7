// process_cpu.cc: see process_cpu.h.
#include "bench/process_cpu.h"

#include <dirent.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace brrr::bench {

absl::StatusOr<int64_t> ProcessCpuNanos(int pid) {
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = ::opendir(tasks.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("no process ", pid));
    return absl::ErrnoToStatus(errno, absl::StrCat("opendir ", tasks));
  }
  int64_t total = 0;
  int threads = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const std::string path = absl::StrCat(tasks, "/", entry->d_name, "/schedstat");
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) continue;  // the thread exited meanwhile
    long long on_cpu = 0;
    if (std::fscanf(f, "%lld", &on_cpu) == 1) {
      total += on_cpu;
      ++threads;
    }
    std::fclose(f);
  }
  ::closedir(dir);
  if (threads == 0) return absl::NotFoundError(absl::StrCat("no thread of process ", pid, " could be read"));
  return total;
}

}  // namespace brrr::bench
