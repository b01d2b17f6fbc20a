#pragma once
#include <chrono>
#include <thread>

namespace examiso::testing {

// Polls `condition` until it holds or `within` passes; its last answer.
template <class F>
bool eventually(F&& condition, std::chrono::milliseconds within,
                std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(every);
  }
  return condition();
}

}  // namespace examiso::testing
