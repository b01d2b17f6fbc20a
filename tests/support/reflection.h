#pragma once
// What grpcurl's `list` and `describe` do, through the server reflection
// protocol, so that tests can prove grpcurl would work.
#include <string>
#include <vector>

namespace examiso::testing {

// `role`: the service's (its certificate's name), e.g. "identity".
std::vector<std::string> reflection_list(const std::string& address, const std::string& role);

// The service's definition as proto text (rpc lines with their message
// types), resolved from the descriptors the server sends; empty if unknown.
std::string reflection_describe(const std::string& address, const std::string& role, const std::string& service);

}  // namespace examiso::testing
