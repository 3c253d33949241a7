// version.h: brrr's version, as the admin service (ServerInfo, the metrics port's build info)
// and every program's --version report it.
#ifndef BRRR_RUNTIME_VERSION_H_
#define BRRR_RUNTIME_VERSION_H_

namespace brrr {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace brrr

#endif  // BRRR_RUNTIME_VERSION_H_
