// SPDX-License-Identifier: MIT
// examples/firmware/never_destroyed.hpp - a global constructed by main() and never
// destroyed: firmware never runs static destructors, and with no libc there is no
// atexit to register them with (a global allocator would need one: it has a
// destructor).
#pragma once

#include <new>

namespace fw {

template <class T>
class never_destroyed {
public:
    template <class... Args>
    T& construct(Args&&... args) noexcept {
        return *new (storage_) T(static_cast<Args&&>(args)...);
    }
    T& operator*() noexcept { return *static_cast<T*>(static_cast<void*>(storage_)); }

private:
    alignas(T) unsigned char storage_[sizeof(T)];
};

} // namespace fw
