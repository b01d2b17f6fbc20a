#pragma once
// Random identifiers and digests, always from OpenSSL.
#include <optional>
#include <string>
#include <string_view>

namespace examiso {

// A random (version 4) UUID from the system's CSPRNG, lower-case.
std::string new_uuid();

// The canonical lower-case form of an 8-4-4-4-12 hex UUID of any version, or
// nullopt when `text` is not one.
std::optional<std::string> canonical_uuid(std::string_view text);

inline bool is_uuid(std::string_view text) { return canonical_uuid(text).has_value(); }

// `bytes` random bytes from the system's CSPRNG, as lower-case hex.
std::string random_hex(size_t bytes);

// The SHA-256 digest of `text`, as lower-case hex.
std::string sha256_hex(std::string_view text);

// A UUID that depends only on `space` and `name` (RFC 9562 version 8 layout,
// from SHA-256): the same name always gives the same id.
std::string name_based_uuid(std::string_view space, std::string_view name);

}  // namespace examiso
