#pragma once

#include <QString>

#include <optional>
#include <utility>
#include <variant>

namespace ifs {

/// What kind of failure an Error is, for callers that act on it (a job that reports "cancelled"
/// instead of "failed", a reader tried after another) without reading the message.
enum class ErrorCode {
    Failed, ///< anything not named below (the default)
    Cancelled, ///< the caller asked to stop: nothing went wrong, there is nothing to show
    Superseded, ///< a newer request replaced this one: its result is of no use any more
    Io, ///< a file or folder could not be read or written
    Format, ///< the data is not in the expected format, or is damaged
    OutOfMemory,
};

/// An error for the user: names the object and the reason, e.g.
/// "Cannot read image “cat/001.jpg”: truncated JPEG data". `Error{message}` is a plain failure.
struct Error
{
    QString message;
    ErrorCode code = ErrorCode::Failed;

    /// The work stopped because it was asked to (cancelled or superseded), not because it failed.
    bool isCancellation() const
    {
        return code == ErrorCode::Cancelled || code == ErrorCode::Superseded;
    }
};

/// The outcome of a fallible core call: a value or an Error. Cheap to move.
template<typename T>
class [[nodiscard]] Result
{
public:
    Result(T value)
        : m_data(std::move(value))
    { }
    Result(Error error)
        : m_data(std::move(error))
    { }

    bool ok() const { return std::holds_alternative<T>(m_data); }
    explicit operator bool() const { return ok(); }

    const T &value() const & { return std::get<T>(m_data); }
    T &value() & { return std::get<T>(m_data); }
    T &&value() && { return std::get<T>(std::move(m_data)); }
    const T *operator->() const { return &std::get<T>(m_data); }
    T *operator->() { return &std::get<T>(m_data); }

    const Error &error() const { return std::get<Error>(m_data); }
    QString errorMessage() const { return ok() ? QString() : error().message; }
    /// Whether this failed because the work was cancelled or superseded.
    bool isCancellation() const { return !ok() && error().isCancellation(); }

private:
    std::variant<T, Error> m_data;
};

/// Result of a call that yields nothing but may fail.
struct Done
{
};
using Status = Result<Done>;

inline Status success()
{
    return Done{};
}

} // namespace ifs
