#pragma once

#include "base/result.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QString>

#include <atomic>
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

/// Reads the central directory of a zip archive that lies in memory (a mapped file) and gives
/// its records as views into that memory, without copying stored ones. Every offset and size is
/// checked against the buffer before use: a hostile or truncated archive gives an error, never a
/// read outside the buffer. ZIP64 records and offsets are supported; encrypted records, split
/// archives and compression methods other than stored and deflate are refused.
class ZipReader
{
public:
    /// Compressed records inflate to at most this many bytes (torch writes them stored, so only
    /// re-zipped files have any): a zip bomb gives an error, not an allocation.
    static constexpr qint64 kMaxInflatedSize = qint64(1) << 30;

    /// Parses the archive held by `data[0, size)`. The memory must outlive the reader and every
    /// QByteArray it returns for stored records. Errors are reasons without the file's name
    /// ("the zip's central directory is damaged").
    static Result<ZipReader> open(const char *data, qint64 size);

    /// Records in central-directory order.
    const QList<ZipRecord> &records() const { return m_records; }
    /// The record with this exact name; nullptr when absent.
    const ZipRecord *find(const QString &name) const;

    /// The record's bytes: a view into the buffer (QByteArray::fromRawData) for a stored record,
    /// or a new inflated buffer. With `verifyCrc` the CRC-32 of the data must match the
    /// directory's. `maxSize` refuses larger records before anything is allocated.
    Result<QByteArray> read(const ZipRecord &record, bool verifyCrc,
                            qint64 maxSize = kMaxInflatedSize) const;

private:
    const char *m_data = nullptr;
    qint64 m_size = 0;
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
