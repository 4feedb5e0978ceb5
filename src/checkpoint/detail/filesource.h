#pragma once

#include "base/result.h"
#include "checkpoint/checkpointvalue.h"

#include <QByteArray>
#include <QMutex>
#include <QString>

#include <atomic>
#include <ctime>
#include <memory>
#include <optional>

/// Internal to the checkpoint reader: the bytes of a file read by position, and storages left in
/// the file until their data is wanted.
namespace ifs::ckpt::detail {

/// Why `path` cannot be read as a file, from stat(2) alone (nothing is opened): "it is a FIFO
/// (named pipe), not a file", "it is a folder"; empty for a regular file (or one that stat()
/// cannot see: opening it then tells why).
QString notARegularFile(const QString &path);

/// The bytes of a checkpoint, read by position: a file (pread(2): a file cut or rewritten while it
/// is read gives an error, where a memory mapping would give SIGBUS) or a buffer in memory.
/// Thread-safe: reads share no file position.
class ByteSource
{
public:
    /// Opens `path` for reading. What is not a regular file (a FIFO, a device, a socket, a
    /// folder) is refused before anything opens it, and the open itself cannot block
    /// (O_NONBLOCK). Errors are reasons without the file's name.
    static Result<std::shared_ptr<ByteSource>> openFile(const QString &path);
    /// A buffer in memory; readers may point into it (memory()) while `keepAlive` lives.
    static std::shared_ptr<ByteSource> fromBuffer(const char *data, qint64 size,
                                                  std::shared_ptr<const void> keepAlive);

    ByteSource(const ByteSource &) = delete;
    ByteSource &operator=(const ByteSource &) = delete;
    ~ByteSource();

    /// The size when opened.
    qint64 size() const { return m_size; }
    /// The bytes of a buffer (null for a file), and what keeps them alive.
    const char *memory() const { return m_memory; }
    const std::shared_ptr<const void> &keepAlive() const { return m_keepAlive; }

    /// Reads exactly `length` bytes at `offset` into `out`. A file that is now shorter (cut or
    /// being rewritten) or cannot be read gives an error that says so.
    Status read(qint64 offset, char *out, qint64 length) const;
    Result<QByteArray> read(qint64 offset, qint64 length) const;
    /// Bytes in memory and what keeps them alive.
    struct HeldBytes
    {
        const char *data = nullptr;
        qint64 size = 0;
        std::shared_ptr<const void> keepAlive;
    };
    /// The whole content in memory: the buffer itself, or the file read once into memory backed
    /// by huge pages where the system offers them (a 100 MB file then costs 50 page faults, not
    /// 25,000). Allocation failures are errors (ErrorCode::OutOfMemory).
    Result<HeldBytes> readAll() const;

    /// Whether the file differs from what was opened (size, modification time, or gone): the
    /// reason data read from it does not match its zip directory.
    bool changed() const;
    /// "the file changed while it was being read (...): read it again once it is fully written".
    QString changedMessage() const;

private:
    ByteSource() = default;

    int m_fd = -1;
    qint64 m_size = 0;
    timespec m_modified{};
    const char *m_memory = nullptr;
    std::shared_ptr<const void> m_keepAlive;
};

/// The bytes that compressed records of one read may inflate to, in all (ReadOptions::
/// maxInflatedBytes): what a zip bomb may cost, shared by the read and the later loads of its
/// storages.
class InflateBudget
{
public:
    explicit InflateBudget(qint64 limit)
        : m_limit(limit)
    { }
    /// Takes `bytes` for `record` before they are inflated; the error says the limit is reached.
    Status take(qint64 bytes, const QString &record);
    qint64 limit() const { return m_limit; }

private:
    const qint64 m_limit;
    std::atomic<qint64> m_used{0};
};

/// Where one record's data lies in a file: a zip record (stored or deflated) or a safetensors
/// tensor's range.
struct RecordRange
{
    QString name; ///< the record's name for messages ("archive/data/3")
    qint64 offset = 0; ///< of the (compressed) data in the file
    qint64 compressedSize = 0;
    qint64 size = 0; ///< inflated
    quint16 method = 0; ///< 0 stored, 8 deflated
    std::optional<quint32> crc; ///< checked when the whole record is read
};

/// Compressed records inflate to at most this many bytes each (torch writes them stored, so only
/// re-zipped files have any): a zip bomb gives an error, not an allocation.
constexpr qint64 kMaxInflatedRecord = qint64(1) << 30;

/// Checks a deflated record's sizes before anything is inflated: the most it may hold and the
/// largest ratio deflate reaches. Empty when acceptable, else the reason.
QString refusedInflation(const RecordRange &range);

/// Calls `visit` on the record's bytes [offset, offset + length) in order: stored data straight
/// from a buffer or in pieces read from the file, deflated data inflated in pieces (from the
/// record's start: inflation cannot seek). Pieces hold multiples of 16 bytes but the last. When
/// the range is the whole record, its CRC-32 (if any) is checked and a deflated record must
/// inflate to exactly its size. Errors are reasons without the file's name.
Status streamRecord(const ByteSource &source, const RecordRange &range, qint64 offset,
                    qint64 length, const ByteVisitor &visit);

/// A storage's data left in the file until it is wanted (ReadOptions::TensorData::OnDemand).
/// load() reads it whole once (a deflated record takes its size from the budget first); visit()
/// streams it in bounded memory without keeping it.
class FileStorageSource final : public StorageSource
{
public:
    /// The storage holds the first `size` bytes of the record (all of them, as a rule). Errors
    /// name `fileName`; deflated records take their size from `budget` (none: no limit).
    FileStorageSource(std::shared_ptr<const ByteSource> source, RecordRange range, qint64 size,
                      std::shared_ptr<InflateBudget> budget, QString fileName);

    qint64 size() const override { return m_size; }
    Result<QByteArray> load() const override;
    Status visit(qint64 offset, qint64 length, const ByteVisitor &visit) const override;

private:
    Error failure(const QString &reason) const;

    std::shared_ptr<const ByteSource> m_source;
    RecordRange m_range;
    qint64 m_size;
    std::shared_ptr<InflateBudget> m_budget;
    QString m_fileName;
    mutable QMutex m_mutex;
    mutable std::optional<QByteArray> m_loaded;
};

/// "Cannot read checkpoint “a.pt”: reason": what every reader error says.
QString cannotReadCheckpoint(const QString &name, const QString &reason);

/// The text of a byte count for messages: "1.5 GiB", "512 MiB".
QString byteCountText(qint64 bytes);

} // namespace ifs::ckpt::detail
