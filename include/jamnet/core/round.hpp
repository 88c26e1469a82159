// Figures for reports: a JSON writer prints the shortest text that reads back
// as the same double, so a measured 0.5000000000000001 would print in full.
// Reports round their figures first, to what their readers need.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace jamnet {

// v as printf("%.*f", decimals) would print it, read back; non-finite
// values pass through (a JSON writer prints them as null).
inline double round_decimals(double v, int decimals) noexcept {
  if (!std::isfinite(v)) return v;
  char buf[352];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return std::strtod(buf, nullptr);
}

// v as printf("%.*g", digits) would print it, read back.
inline double round_significant(double v, int digits) noexcept {
  if (!std::isfinite(v)) return v;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return std::strtod(buf, nullptr);
}

}  // namespace jamnet
