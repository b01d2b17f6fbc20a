#include "services/environment/terminal_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <system_error>

namespace examiso::environment {

TerminalLoop::TerminalLoop() : epoll_(epoll_create1(EPOLL_CLOEXEC)), wake_(eventfd(0, EFD_CLOEXEC)) {
  if (epoll_ < 0 || wake_ < 0) throw std::system_error(errno, std::generic_category(), "terminal loop");
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = wake_;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &e);
  thread_ = std::thread([this] { run(); });
}

TerminalLoop::~TerminalLoop() {
  const uint64_t one = 1;
  (void)!write(wake_, &one, sizeof one);
  thread_.join();
  close(wake_);
  close(epoll_);
}

void TerminalLoop::add(int fd, std::function<void()> ready) {
  std::lock_guard lock(mutex_);
  ready_[fd] = std::move(ready);
  epoll_event e{};
  e.events = EPOLLIN | EPOLLONESHOT;
  e.data.fd = fd;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &e);
}

void TerminalLoop::rearm(int fd) {
  epoll_event e{};
  e.events = EPOLLIN | EPOLLONESHOT;
  e.data.fd = fd;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &e);
}

void TerminalLoop::remove(int fd) {
  std::lock_guard lock(mutex_);
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  ready_.erase(fd);
}

void TerminalLoop::run() {
  epoll_event events[64];
  for (;;) {
    const int n = epoll_wait(epoll_, events, 64, -1);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == wake_) return;
      // Under the lock, so that remove() waits for a `ready` under way. A
      // descriptor removed (and perhaps reused) since epoll_wait returned
      // costs at most one call that finds nothing to read.
      std::lock_guard lock(mutex_);
      const auto it = ready_.find(events[i].data.fd);
      if (it != ready_.end()) it->second();
    }
  }
}

}  // namespace examiso::environment
