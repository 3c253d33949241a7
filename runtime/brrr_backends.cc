// brrr-backends: lists the reactor backend plugins that exist and which of them start on
// this machine, and which one --backend=auto would pick.
//
//   bazel run //runtime:brrr-backends
//   bazel run //runtime:brrr-backends -- --plugin_dir=/opt/brrr/reactors --json
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/cli_usage.h"
#include "runtime/plugin_loader.h"

ABSL_FLAG(std::string, plugin_dir, "", "Directory searched first for backend plugins");
ABSL_FLAG(bool, json, false, "Print one JSON object per backend, one per line");

namespace {

std::string Capabilities(uint64_t caps) {
  std::vector<std::string> names;
  if (caps & brrr::kCapMultishot) names.push_back("multishot");
  if (caps & brrr::kCapProvidedBuffers) names.push_back("provided-buffers");
  if (caps & brrr::kCapNativeOps) names.push_back("native-ops");
  if (caps & brrr::kCapSendMsg) names.push_back("sendmsg");
  return names.empty() ? "-" : absl::StrJoin(names, ",");
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  brrr::SetUsage(
      "Lists brrr's I/O backend plugins, whether each starts on this machine (and why not),\n"
      "and which one --backend=auto picks.\n\nUsage: brrr-backends [--plugin_dir=DIR] [--json]\n"
      "Exit codes: 0 listed, with a backend for auto; 1 no plugin found, or none starts; 2 bad option;\n"
      "6 the list could not be written (a full disk).");
  brrr::ParseFlagsOnly(argc, argv, "brrr-backends", /*exit_code=*/2);
  std::string plugin_dir = absl::GetFlag(FLAGS_plugin_dir);
  if (absl::Status dir = brrr::PluginLoader::CheckOverrideDir(plugin_dir); !dir.ok()) {
    std::fprintf(stderr, "brrr-backends: --plugin_dir: %s\n", std::string(dir.message()).c_str());
    return 2;
  }
  brrr::PluginLoader loader = brrr::PluginLoader::Default(plugin_dir);
  std::vector<brrr::BackendProbe> probes = loader.Probe();
  // From the probes, which ran in child processes: listing loads no plugin into this process.
  absl::StatusOr<std::string> chosen = loader.AutoChoice();
  std::string auto_name = chosen.ok() ? *chosen : "";

  if (absl::GetFlag(FLAGS_json)) {
    for (const brrr::BackendProbe& p : probes) {
      std::printf("{\"name\":%s,\"starts\":%s,\"auto\":%s,\"capabilities\":%s,\"path\":%s,\"reason\":%s}\n",
                  JsonString(p.name).c_str(), p.status.ok() ? "true" : "false",
                  p.name == auto_name ? "true" : "false", JsonString(Capabilities(p.capabilities)).c_str(),
                  JsonString(p.path).c_str(), JsonString(p.status.ok() ? "" : p.status.message()).c_str());
    }
    return brrr::ExitCodeAfterStdout("brrr-backends", probes.empty() || !chosen.ok() ? 1 : 0);
  }
  if (probes.empty()) {
    std::fprintf(stderr, "brrr-backends: no plugins found in %s\n",
                 absl::StrJoin(loader.search_dirs(), ", ").c_str());
    return 1;
  }
  // Columns as wide as their widest entry.
  int name_width = sizeof("BACKEND") - 1;
  int caps_width = sizeof("CAPABILITIES") - 1;
  for (const brrr::BackendProbe& p : probes) {
    name_width = std::max(name_width, static_cast<int>(p.name.size()));
    caps_width = std::max(caps_width, static_cast<int>(Capabilities(p.capabilities).size()));
  }
  std::printf("%-*s  %-12s  %-*s  %s\n", name_width, "BACKEND", "STATUS", caps_width, "CAPABILITIES", "FILE");
  for (const brrr::BackendProbe& p : probes) {
    std::printf("%-*s  %-12s  %-*s  %s\n", name_width, p.name.c_str(), p.status.ok() ? "starts" : "cannot start",
                caps_width, Capabilities(p.capabilities).c_str(), p.path.c_str());
    if (!p.status.ok()) std::printf("%*s  why: %s\n", name_width, "", std::string(p.status.message()).c_str());
  }
  if (chosen.ok()) {
    std::printf("\n--backend=auto picks: %s\n", auto_name.c_str());
  } else {
    std::printf("\n%s\n", std::string(chosen.status().message()).c_str());  // "--backend=auto: ..."
  }
  return brrr::ExitCodeAfterStdout("brrr-backends", chosen.ok() ? 0 : 1);
}
