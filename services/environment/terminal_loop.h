#pragma once
// One thread that waits on every attached terminal's descriptor at once
// (epoll), so an attachment costs no thread of its own.
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace examiso::environment {

class TerminalLoop final {
 public:
  TerminalLoop();
  ~TerminalLoop();
  TerminalLoop(const TerminalLoop&) = delete;
  TerminalLoop& operator=(const TerminalLoop&) = delete;

  // Runs `ready` on the loop's thread once `fd` is readable (or at its end).
  // One shot: it runs again only after rearm(fd).
  void add(int fd, std::function<void()> ready);
  void rearm(int fd);
  // Once it returns, `ready` is not running and will not run again. Not from
  // inside `ready`.
  void remove(int fd);

 private:
  void run();

  int epoll_ = -1;
  int wake_ = -1;  // an eventfd that ends run()
  std::mutex mutex_;
  std::unordered_map<int, std::function<void()>> ready_;
  std::thread thread_;
};

}  // namespace examiso::environment
