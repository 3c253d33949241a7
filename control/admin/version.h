// version.h: brrr's version, as the admin service and --version report it.
#ifndef BRRR_CONTROL_VERSION_H_
#define BRRR_CONTROL_VERSION_H_

namespace brrr::control {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace brrr::control

#endif  // BRRR_CONTROL_VERSION_H_
