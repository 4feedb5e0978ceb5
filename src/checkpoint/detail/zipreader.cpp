#include "checkpoint/detail/zipreader.h"

#include <QThreadPool>
#include <QtConcurrent/QtConcurrentMap>
#include <QtEndian>

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace ifs::ckpt::detail {

namespace {

constexpr quint32 kLocalHeader = 0x04034b50;
constexpr quint32 kCentralHeader = 0x02014b50;
constexpr quint32 kEndOfDirectory = 0x06054b50;
constexpr quint32 kZip64EndOfDirectory = 0x06064b50;
constexpr quint32 kZip64Locator = 0x07064b50;
constexpr qint64 kEndOfDirectorySize = 22;
constexpr qint64 kCentralHeaderSize = 46;
constexpr qint64 kLocalHeaderSize = 30;
// The largest ratio deflate reaches (258-byte matches in 2 bits, about 1032:1); an archive that
// claims more lies about its sizes.
constexpr qint64 kMaxDeflateRatio = 1032;

QString truncatedMessage()
{
    return QStringLiteral("the file ends early: it was probably not fully written or downloaded");
}

/// Bounds-checked little-endian reads from the buffer.
class Bytes
{
public:
    Bytes(const char *data, qint64 size)
        : m_data(data)
        , m_size(size)
    { }

    bool has(qint64 offset, qint64 length) const
    {
        return offset >= 0 && length >= 0 && offset <= m_size && length <= m_size - offset;
    }
    quint16 u16(qint64 offset) const { return qFromLittleEndian<quint16>(m_data + offset); }
    quint32 u32(qint64 offset) const { return qFromLittleEndian<quint32>(m_data + offset); }
    quint64 u64(qint64 offset) const { return qFromLittleEndian<quint64>(m_data + offset); }
    const char *at(qint64 offset) const { return m_data + offset; }
    qint64 size() const { return m_size; }

private:
    const char *m_data;
    qint64 m_size;
};

} // namespace

quint32 crc32Of(const char *data, qint64 size)
{
    uLong crc = crc32_z(0L, Z_NULL, 0);
    return quint32(crc32_z(crc, reinterpret_cast<const Bytef *>(data), z_size_t(size)));
}

const ZipRecord *firstCrcMismatch(const std::vector<PendingCrc> &records,
                                  const std::atomic_bool *cancel)
{
    struct Piece
    {
        size_t record;
        qint64 offset;
        qint64 length;
        quint32 crc;
    };
    constexpr qint64 kPiece = qint64(8) << 20;
    std::vector<Piece> pieces;
    qint64 total = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        const qint64 size = records[i].record->size;
        total += size;
        for (qint64 offset = 0; offset < size || offset == 0; offset += kPiece) {
            pieces.push_back({i, offset, std::min(kPiece, size - offset), 0});
            if (size == 0)
                break;
        }
    }
    const auto compute = [&](Piece &piece) {
        if (cancel && cancel->load())
            return;
        piece.crc = crc32Of(records[piece.record].data + piece.offset, piece.length);
    };
    if (total >= 4 * kPiece && QThreadPool::globalInstance()->maxThreadCount() > 1)
        QtConcurrent::blockingMap(pieces, compute);
    else
        std::for_each(pieces.begin(), pieces.end(), compute);
    if (cancel && cancel->load())
        return nullptr;
    // Pieces are in record order: combine each record's pieces in turn.
    size_t at = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        uLong crc = pieces[at].crc;
        for (++at; at < pieces.size() && pieces[at].record == i; ++at)
            crc = crc32_combine64(crc, pieces[at].crc, z_off64_t(pieces[at].length));
        if (quint32(crc) != records[i].record->crc)
            return records[i].record;
    }
    return nullptr;
}

Result<ZipReader> ZipReader::open(const char *data, qint64 size)
{
    const Bytes bytes(data, size);
    if (size < kEndOfDirectorySize) {
        return Error{size >= 4 && bytes.u32(0) == kLocalHeader ? truncatedMessage()
                                                               : QStringLiteral("not a zip file")};
    }

    // The end-of-directory record sits at the very end, before a comment of up to 64 KiB.
    qint64 end = -1;
    const qint64 lowest = std::max<qint64>(0, size - kEndOfDirectorySize - 0xFFFF);
    for (qint64 at = size - kEndOfDirectorySize; at >= lowest; --at) {
        if (bytes.u32(at) == kEndOfDirectory
            && at + kEndOfDirectorySize + bytes.u16(at + 20) <= size) {
            end = at;
            break;
        }
    }
    if (end < 0) {
        if (bytes.u32(0) == kLocalHeader)
            return Error{truncatedMessage() + u" (the zip's directory at its end is missing)"};
        return Error{QStringLiteral("not a zip file (no end-of-archive record)")};
    }

    qint64 entryCount = bytes.u16(end + 10);
    qint64 directorySize = bytes.u32(end + 12);
    qint64 directoryOffset = bytes.u32(end + 16);
    if (bytes.u16(end + 4) != 0 || bytes.u16(end + 6) != 0)
        return Error{QStringLiteral("split or multi-volume zip archives are not supported")};

    if (end >= 20 && bytes.u32(end - 20) == kZip64Locator) {
        const quint64 zip64End = bytes.u64(end - 20 + 8);
        if (zip64End > quint64(size) || !bytes.has(qint64(zip64End), 56)
            || bytes.u32(qint64(zip64End)) != kZip64EndOfDirectory) {
            return Error{QStringLiteral("the zip's ZIP64 end-of-archive record is damaged")};
        }
        const quint64 count = bytes.u64(qint64(zip64End) + 32);
        const quint64 length = bytes.u64(qint64(zip64End) + 40);
        const quint64 offset = bytes.u64(qint64(zip64End) + 48);
        if (count > quint64(size) || length > quint64(size) || offset > quint64(size))
            return Error{QStringLiteral("the zip's ZIP64 end-of-archive record is damaged")};
        entryCount = qint64(count);
        directorySize = qint64(length);
        directoryOffset = qint64(offset);
    }
    if (!bytes.has(directoryOffset, directorySize) || directoryOffset + directorySize > end) {
        return Error{QStringLiteral("the zip's central directory lies outside the file (it is "
                                    "damaged or the file was cut)")};
    }
    if (entryCount > directorySize / kCentralHeaderSize)
        return Error{QStringLiteral("the zip's central directory is damaged (%1 entries claimed "
                                    "in %2 bytes)")
                         .arg(entryCount)
                         .arg(directorySize)};

    ZipReader reader;
    reader.m_data = data;
    reader.m_size = size;
    reader.m_records.reserve(entryCount);
    reader.m_index.reserve(entryCount);
    const qint64 directoryEnd = directoryOffset + directorySize;
    qint64 at = directoryOffset;
    for (qint64 i = 0; i < entryCount; ++i) {
        if (!bytes.has(at, kCentralHeaderSize) || at + kCentralHeaderSize > directoryEnd
            || bytes.u32(at) != kCentralHeader) {
            return Error{
                QStringLiteral("the zip's central directory is damaged (entry %1)").arg(i + 1)};
        }
        const quint16 flags = bytes.u16(at + 8);
        ZipRecord record;
        record.method = bytes.u16(at + 10);
        record.crc = bytes.u32(at + 16);
        record.compressedSize = bytes.u32(at + 20);
        record.size = bytes.u32(at + 24);
        const qint64 nameLength = bytes.u16(at + 28);
        const qint64 extraLength = bytes.u16(at + 30);
        const qint64 commentLength = bytes.u16(at + 32);
        record.localHeaderOffset = bytes.u32(at + 42);
        const qint64 next = at + kCentralHeaderSize + nameLength + extraLength + commentLength;
        if (next > directoryEnd) {
            return Error{
                QStringLiteral("the zip's central directory is damaged (entry %1)").arg(i + 1)};
        }
        record.name = QString::fromUtf8(bytes.at(at + kCentralHeaderSize), nameLength);

        // ZIP64 extra field: the 64-bit values of the fields that hold 0xFFFFFFFF, in order.
        qint64 extra = at + kCentralHeaderSize + nameLength;
        const qint64 extraEnd = extra + extraLength;
        while (extra + 4 <= extraEnd) {
            const quint16 id = bytes.u16(extra);
            const qint64 length = bytes.u16(extra + 2);
            if (extra + 4 + length > extraEnd)
                break;
            if (id == 0x0001) {
                qint64 field = extra + 4;
                const auto take = [&](qint64 *value) {
                    if (*value != 0xFFFFFFFF)
                        return true;
                    if (field + 8 > extra + 4 + length)
                        return false;
                    const quint64 wide = bytes.u64(field);
                    field += 8;
                    if (wide > quint64(std::numeric_limits<qint64>::max()))
                        return false;
                    *value = qint64(wide);
                    return true;
                };
                if (!take(&record.size) || !take(&record.compressedSize)
                    || !take(&record.localHeaderOffset)) {
                    return Error{QStringLiteral("the ZIP64 sizes of record “%1” are damaged")
                                     .arg(record.name)};
                }
            }
            extra += 4 + length;
        }

        if (flags & 0x0001)
            return Error{QStringLiteral("record “%1” is encrypted").arg(record.name)};
        if (record.method != 0 && record.method != 8) {
            return Error{QStringLiteral("record “%1” uses compression method %2; only stored and "
                                        "deflated records are supported")
                             .arg(record.name)
                             .arg(record.method)};
        }
        const qint64 local = record.localHeaderOffset;
        if (!bytes.has(local, kLocalHeaderSize) || bytes.u32(local) != kLocalHeader) {
            return Error{QStringLiteral("the local header of record “%1” is missing or damaged")
                             .arg(record.name)};
        }
        record.dataOffset
            = local + kLocalHeaderSize + bytes.u16(local + 26) + bytes.u16(local + 28);
        if (!bytes.has(record.dataOffset, record.compressedSize)) {
            return Error{truncatedMessage()
                         + QStringLiteral(" (record “%1” reaches past the end)").arg(record.name)};
        }
        if (record.method == 0 && record.compressedSize != record.size) {
            return Error{QStringLiteral("record “%1” is stored but its sizes differ (%2 and %3 "
                                        "bytes)")
                             .arg(record.name)
                             .arg(record.compressedSize)
                             .arg(record.size)};
        }
        if (reader.m_index.contains(record.name))
            return Error{QStringLiteral("the zip holds two records named “%1”").arg(record.name)};
        reader.m_index.insert(record.name, reader.m_records.size());
        reader.m_records.append(std::move(record));
        at = next;
    }
    return reader;
}

const ZipRecord *ZipReader::find(const QString &name) const
{
    const auto it = m_index.constFind(name);
    return it == m_index.constEnd() ? nullptr : &m_records[*it];
}

Result<QByteArray> ZipReader::read(const ZipRecord &record, bool verifyCrc, qint64 maxSize) const
{
    if (record.size > maxSize) {
        return Error{QStringLiteral("record “%1” claims %2 bytes, more than the %3 allowed")
                         .arg(record.name)
                         .arg(record.size)
                         .arg(maxSize)};
    }
    const char *source = m_data + record.dataOffset;
    QByteArray out;
    if (record.method == 0) {
        out = QByteArray::fromRawData(source, qsizetype(record.size));
    } else {
        if (record.size > kMaxInflatedSize
            || (record.compressedSize > 0 && record.size / record.compressedSize > kMaxDeflateRatio)
            || (record.compressedSize == 0 && record.size > 0)) {
            return Error{QStringLiteral("compressed record “%1” claims to inflate from %2 to %3 "
                                        "bytes; refused (a damaged file or a zip bomb)")
                             .arg(record.name)
                             .arg(record.compressedSize)
                             .arg(record.size)};
        }
        out = QByteArray(qsizetype(record.size), Qt::Uninitialized);
        z_stream stream;
        std::memset(&stream, 0, sizeof stream);
        if (inflateInit2(&stream, -MAX_WBITS) != Z_OK)
            return Error{QStringLiteral("zlib failed to start")};
        qint64 consumed = 0;
        qint64 produced = 0;
        int status = Z_OK;
        // zlib's counters are 32-bit on some platforms: feed and drain in chunks.
        constexpr qint64 kChunk = qint64(1) << 30;
        char sink[1];
        while (status == Z_OK) {
            if (stream.avail_in == 0) {
                const qint64 take = std::min(kChunk, record.compressedSize - consumed);
                stream.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(source + consumed));
                stream.avail_in = uInt(take);
                consumed += take;
            }
            // One spare byte past the claimed size tells a record that inflates to more.
            const bool full = produced >= record.size;
            stream.next_out = reinterpret_cast<Bytef *>(full ? sink : out.data() + produced);
            stream.avail_out = full ? 1 : uInt(std::min(kChunk, record.size - produced));
            const uInt before = stream.avail_out;
            status = inflate(&stream, Z_NO_FLUSH);
            produced += before - stream.avail_out;
            if (produced > record.size)
                break;
            if (status == Z_BUF_ERROR && stream.avail_in == 0 && consumed < record.compressedSize)
                status = Z_OK;
            if (status == Z_OK && stream.avail_in == 0 && consumed >= record.compressedSize
                && stream.avail_out != 0) {
                status = Z_DATA_ERROR; // input exhausted before the end of the stream
            }
        }
        inflateEnd(&stream);
        if (status != Z_STREAM_END || produced != record.size) {
            return Error{QStringLiteral("compressed record “%1” is damaged (it does not inflate "
                                        "to the %2 bytes it claims)")
                             .arg(record.name)
                             .arg(record.size)};
        }
    }
    if (verifyCrc && crc32Of(out.constData(), out.size()) != record.crc) {
        return Error{QStringLiteral("record “%1” is damaged (its CRC-32 checksum does not match)")
                         .arg(record.name)};
    }
    return out;
}

} // namespace ifs::ckpt::detail
