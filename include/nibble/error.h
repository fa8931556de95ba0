// Errors for bad input from outside (files, flags, JSON, API arguments).
// Every message names where (file, tensor or field), what was expected and what was found.
#pragma once

#include <stdexcept>
#include <string>

#include "nibble/api.h"

namespace nibble {

class NIBBLE_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};
// The file could not be opened, read, written or renamed.
class NIBBLE_API IoError : public Error {
 public:
  using Error::Error;
};
// The bytes of a file do not follow its format.
class NIBBLE_API FormatError : public Error {
 public:
  using Error::Error;
};
// A shape, length or dtype does not fit what the operation needs.
class NIBBLE_API ShapeError : public Error {
 public:
  using Error::Error;
};
// A configuration value (flag, JSON field) is missing or out of range.
class NIBBLE_API ConfigError : public Error {
 public:
  using Error::Error;
};
// A weight holds NaN or infinity (found at load; --allow-nonfinite lets it through).
class NIBBLE_API NonFiniteError : public ConfigError {
 public:
  NonFiniteError(const std::string& file, const std::string& tensor, long long index)
      : ConfigError(file + ": tensor '" + tensor + "': element " + std::to_string(index) +
                    " is NaN or infinite; refusing non-finite weights (--allow-nonfinite loads them anyway)") {}
};
// A collective or point-to-point message failed.
class NIBBLE_API CommError : public Error {
 public:
  using Error::Error;
};

}  // namespace nibble
