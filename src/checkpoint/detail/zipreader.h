#pragma once

#include "base/result.h"
#include "checkpoint/detail/filesource.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QString>

#include <atomic>
#include <memory>
#include <vector>

/// Internal to the checkpoint reader: the zip container of torch.save and torch.jit.save files.
namespace ifs::ckpt::detail {

/// One record of a zip archive, as its central directory describes it.
struct ZipRecord
{
    QString name;
    qint64 localHeaderOffset = 0;
    qint64 dataOffset = 0; ///< where the (compressed) data starts, from the local header
    qint64 compressedSize = 0;
    qint64 size = 0; ///< uncompressed
    quint32 crc = 0;
    quint16 method = 0; ///< 0 stored, 8 deflated
};

/// Reads the central directory of a zip archive from a ByteSource (a file read by position, or a
/// buffer) and gives its records: views into a buffer without copying stored ones, or their
/// place in the file (range()) for storages read later. Every offset and size is checked against
/// the source before use: a hostile or truncated archive gives an error, never a read outside it.
/// ZIP64 records and offsets are supported; encrypted records, split archives and compression
/// methods other than stored and deflate are refused.
class ZipReader
{
public:
    /// Compressed records inflate to at most this many bytes (torch writes them stored, so only
    /// re-zipped files have any): a zip bomb gives an error, not an allocation.
    static constexpr qint64 kMaxInflatedSize = kMaxInflatedRecord;

    /// Parses the archive that `source` holds: its end record and central directory, and each
    /// record's local header. Errors are reasons without the file's name ("the zip's central
    /// directory is damaged").
    static Result<ZipReader> open(std::shared_ptr<const ByteSource> source);

    /// Records in central-directory order.
    const QList<ZipRecord> &records() const { return m_records; }
    /// The record with this exact name; nullptr when absent.
    const ZipRecord *find(const QString &name) const;
    const std::shared_ptr<const ByteSource> &source() const { return m_source; }

    /// The record's bytes: a view into the buffer (QByteArray::fromRawData) for a stored record
    /// of a buffer, otherwise read or inflated into a new one. With `verifyCrc` the CRC-32 of
    /// the data must match the directory's. `maxSize` refuses larger records before anything is
    /// allocated.
    Result<QByteArray> read(const ZipRecord &record, bool verifyCrc,
                            qint64 maxSize = kMaxInflatedSize) const;
    /// Where the record's data lies, for streamRecord() and FileStorageSource.
    static RecordRange range(const ZipRecord &record, bool verifyCrc);

private:
    std::shared_ptr<const ByteSource> m_source;
    QList<ZipRecord> m_records;
    QHash<QString, qsizetype> m_index;
};

/// zlib's CRC-32 of a buffer of any size.
quint32 crc32Of(const char *data, qint64 size);

/// A record's data whose CRC-32 is still to be checked.
struct PendingCrc
{
    const ZipRecord *record = nullptr;
    const char *data = nullptr;
};

/// Checks the CRC-32 of records, large ones in pieces on Qt's global thread pool (zlib's CRC runs
/// at about 1.5 GB/s on one core: the check would otherwise take most of a read). Returns the
/// first damaged record in the given order, or nullptr. Stops early when `cancel` is set.
const ZipRecord *firstCrcMismatch(const std::vector<PendingCrc> &records,
                                  const std::atomic_bool *cancel = nullptr);

} // namespace ifs::ckpt::detail
