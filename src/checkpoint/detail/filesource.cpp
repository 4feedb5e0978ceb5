#include "checkpoint/detail/filesource.h"

#include <QFile>
#include <QLocale>

#include <zlib.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace ifs::ckpt::detail {

namespace {

// Pieces of a streamed record: large enough that a read or an inflate call costs little per byte,
// small enough that a pass over a storage of any size stays in a few MiB.
constexpr qint64 kPiece = qint64(4) << 20;
// Compressed input read from a file per step.
constexpr qint64 kInputPiece = qint64(1) << 20;
// The largest ratio deflate reaches (258-byte matches in 2 bits, about 1032:1); an archive that
// claims more lies about its sizes.
constexpr qint64 kMaxDeflateRatio = 1032;

QString systemError(int error)
{
    return QString::fromLocal8Bit(std::strerror(error));
}

/// Why a file of this mode is not one to read a checkpoint from; empty for a regular file.
QString modeReason(mode_t mode)
{
    if (S_ISREG(mode))
        return {};
    if (S_ISDIR(mode))
        return QStringLiteral("it is a folder, not a file");
    if (S_ISFIFO(mode))
        return QStringLiteral("it is a FIFO (named pipe), not a file: save what it carries to a "
                              "file and open that");
    if (S_ISCHR(mode))
        return QStringLiteral("it is a character device, not a file");
    if (S_ISBLK(mode))
        return QStringLiteral("it is a block device, not a file: copy the checkpoint to a file "
                              "first");
    if (S_ISSOCK(mode))
        return QStringLiteral("it is a socket, not a file");
    return QStringLiteral("it is not a regular file");
}

timespec modifiedTime(const struct stat &info)
{
#ifdef __APPLE__
    return info.st_mtimespec;
#else
    return info.st_mtim;
#endif
}

QString damagedCrc(const QString &name)
{
    return QStringLiteral("record “%1” is damaged (its CRC-32 checksum does not match)").arg(name);
}

QString badInflation(const RecordRange &range)
{
    return QStringLiteral("compressed record “%1” is damaged (it does not inflate to the %2 bytes "
                          "it claims)")
        .arg(range.name)
        .arg(range.size);
}

/// Hands the part of an inflated or read piece that lies in [begin, end) of the record to
/// `visit`; `at` is where the piece starts in the record. False when the visitor stopped.
bool deliver(const char *piece, qint64 size, qint64 at, qint64 begin, qint64 end,
             const ByteVisitor &visit)
{
    const qint64 from = std::max(at, begin);
    const qint64 to = std::min(at + size, end);
    if (from >= to)
        return true;
    return visit(piece + (from - at), to - from);
}

Status streamStored(const ByteSource &source, const RecordRange &range, qint64 offset,
                    qint64 length, const ByteVisitor &visit, uLong *crc)
{
    if (const char *memory = source.memory()) {
        const char *data = memory + range.offset + offset;
        if (crc)
            *crc = crc32_z(*crc, reinterpret_cast<const Bytef *>(data), z_size_t(length));
        if (length > 0)
            visit(data, length);
        return success();
    }
    QByteArray buffer(qsizetype(std::min(kPiece, std::max<qint64>(length, 1))), Qt::Uninitialized);
    qint64 at = offset;
    const qint64 end = offset + length;
    while (at < end) {
        // Pieces end at multiples of kPiece from the record's start: whole elements each.
        const qint64 take = std::min(end, (at / kPiece + 1) * kPiece) - at;
        if (Status status = source.read(range.offset + at, buffer.data(), take); !status)
            return status;
        if (crc)
            *crc = crc32_z(*crc, reinterpret_cast<const Bytef *>(buffer.constData()),
                           z_size_t(take));
        if (!visit(buffer.constData(), take))
            return success();
        at += take;
    }
    return success();
}

/// Inflates a deflated record from its start, handing [offset, offset + length) to `visit` in
/// pieces that end at multiples of kPiece from the record's start.
class Inflater
{
public:
    Inflater(const ByteSource &source, const RecordRange &range)
        : m_source(source)
        , m_range(range)
    {
        std::memset(&m_stream, 0, sizeof m_stream);
    }
    ~Inflater()
    {
        if (m_started)
            inflateEnd(&m_stream);
    }
    Inflater(const Inflater &) = delete;
    Inflater &operator=(const Inflater &) = delete;

    Status run(qint64 offset, qint64 length, const ByteVisitor &visit, uLong *crc)
    {
        if (inflateInit2(&m_stream, -MAX_WBITS) != Z_OK)
            return Error{QStringLiteral("zlib failed to start")};
        m_started = true;
        const qint64 end = offset + length;
        const bool whole = offset == 0 && length == m_range.size;
        QByteArray out(qsizetype(std::min(kPiece, std::max<qint64>(m_range.size, 1))),
                       Qt::Uninitialized);
        qint64 produced = 0; // bytes of the record before `out`
        int status = Z_OK;
        while (status == Z_OK) {
            // Past the claimed size, one spare byte tells a record that inflates to more.
            const bool full = produced >= m_range.size;
            const qint64 room = full ? 1 : std::min<qint64>(out.size(), m_range.size - produced);
            char spare[1];
            m_stream.next_out = reinterpret_cast<Bytef *>(full ? spare : out.data());
            m_stream.avail_out = uInt(room);
            // Fill the piece completely (inflate stops when its input runs out).
            while (status == Z_OK && m_stream.avail_out > 0) {
                if (Status input = refill(); !input)
                    return input;
                status = inflate(&m_stream, Z_NO_FLUSH);
                if (status == Z_BUF_ERROR && m_stream.avail_in == 0 && !exhausted())
                    status = Z_OK;
                if (status == Z_OK && m_stream.avail_in == 0 && exhausted()
                    && m_stream.avail_out != 0) {
                    status = Z_DATA_ERROR; // input exhausted before the end of the stream
                }
            }
            const qint64 got = room - m_stream.avail_out;
            if (full && got > 0)
                return Error{badInflation(m_range)};
            if (!full) {
                if (crc)
                    *crc = crc32_z(*crc, reinterpret_cast<const Bytef *>(out.constData()),
                                   z_size_t(got));
                if (!deliver(out.constData(), got, produced, offset, end, visit))
                    return success();
                produced += got;
                if (!whole && produced >= end)
                    return success(); // the rest is not wanted: no need to inflate it
            }
        }
        if (status != Z_STREAM_END || produced != m_range.size)
            return Error{badInflation(m_range)};
        return success();
    }

private:
    bool exhausted() const { return m_consumed >= m_range.compressedSize; }

    /// Gives zlib more compressed input when it has none.
    Status refill()
    {
        if (m_stream.avail_in > 0 || exhausted())
            return success();
        // zlib's counters are 32-bit on some platforms: feed in pieces.
        const qint64 left = m_range.compressedSize - m_consumed;
        if (const char *memory = m_source.memory()) {
            const qint64 take = std::min<qint64>(left, qint64(1) << 30);
            m_stream.next_in = reinterpret_cast<Bytef *>(
                const_cast<char *>(memory + m_range.offset + m_consumed));
            m_stream.avail_in = uInt(take);
            m_consumed += take;
            return success();
        }
        const qint64 take = std::min(left, kInputPiece);
        if (m_input.size() < take)
            m_input.resize(qsizetype(take));
        if (Status status = m_source.read(m_range.offset + m_consumed, m_input.data(), take);
            !status) {
            return status;
        }
        m_stream.next_in = reinterpret_cast<Bytef *>(m_input.data());
        m_stream.avail_in = uInt(take);
        m_consumed += take;
        return success();
    }

    const ByteSource &m_source;
    const RecordRange &m_range;
    z_stream m_stream;
    bool m_started = false;
    qint64 m_consumed = 0;
    QByteArray m_input;
};

} // namespace

QString cannotReadCheckpoint(const QString &name, const QString &reason)
{
    return QStringLiteral("Cannot read checkpoint “%1”: %2").arg(name, reason);
}

QString byteCountText(qint64 bytes)
{
    return QLocale::c().formattedDataSize(bytes, 1, QLocale::DataSizeIecFormat);
}

QString notARegularFile(const QString &path)
{
    struct stat info;
    if (::stat(QFile::encodeName(path).constData(), &info) != 0)
        return {};
    return modeReason(info.st_mode);
}

// --- ByteSource ----------------------------------------------------------------------------------

Result<std::shared_ptr<ByteSource>> ByteSource::openFile(const QString &path)
{
    // stat() first: opening a FIFO for reading waits for a writer, and opening some devices has
    // effects of its own.
    if (const QString reason = notARegularFile(path); !reason.isEmpty())
        return Error{reason, ErrorCode::Io};
    // O_NONBLOCK: should the path become a FIFO between stat() and open(), open() still returns
    // at once, and fstat() below refuses it.
    const int fd = ::open(QFile::encodeName(path).constData(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return Error{systemError(errno), ErrorCode::Io};
    std::shared_ptr<ByteSource> source(new ByteSource);
    source->m_fd = fd;
    struct stat info;
    if (::fstat(fd, &info) != 0)
        return Error{systemError(errno), ErrorCode::Io};
    if (const QString reason = modeReason(info.st_mode); !reason.isEmpty())
        return Error{reason, ErrorCode::Io};
    source->m_size = qint64(info.st_size);
    source->m_modified = modifiedTime(info);
    return source;
}

std::shared_ptr<ByteSource> ByteSource::fromBuffer(const char *data, qint64 size,
                                                   std::shared_ptr<const void> keepAlive)
{
    std::shared_ptr<ByteSource> source(new ByteSource);
    source->m_memory = data;
    source->m_size = size;
    source->m_keepAlive = std::move(keepAlive);
    return source;
}

ByteSource::~ByteSource()
{
    if (m_fd >= 0)
        ::close(m_fd);
}

Status ByteSource::read(qint64 offset, char *out, qint64 length) const
{
    if (offset < 0 || length < 0 || offset > m_size || length > m_size - offset) {
        return Error{QStringLiteral("the file ends early: it was probably not fully written or "
                                    "downloaded"),
                     ErrorCode::Format};
    }
    if (m_memory) {
        if (length > 0)
            std::memcpy(out, m_memory + offset, size_t(length));
        return success();
    }
    while (length > 0) {
        const ssize_t got
            = ::pread(m_fd, out, size_t(std::min<qint64>(length, qint64(1) << 30)), off_t(offset));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return Error{systemError(errno), ErrorCode::Io};
        if (got == 0)
            return Error{changedMessage(), ErrorCode::Io}; // shorter than when it was opened
        out += got;
        offset += got;
        length -= got;
    }
    return success();
}

Result<QByteArray> ByteSource::read(qint64 offset, qint64 length) const
{
    QByteArray out;
    try {
        out = QByteArray(qsizetype(length), Qt::Uninitialized);
    } catch (const std::bad_alloc &) {
        return Error{QStringLiteral("not enough memory for %1").arg(byteCountText(length)),
                     ErrorCode::OutOfMemory};
    }
    if (Status status = read(offset, out.data(), length); !status)
        return status.error();
    return out;
}

namespace {

/// Anonymous memory for a whole file: aligned to 2 MiB and advised to use transparent huge pages,
/// since first-touch page faults dominate reading a big file into fresh memory.
class FileMemory
{
public:
    explicit FileMemory(size_t size)
        : m_length(size + kHugePage)
    {
        void *mapped
            = ::mmap(nullptr, m_length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mapped == MAP_FAILED)
            return;
        m_mapping = static_cast<char *>(mapped);
        const auto address = reinterpret_cast<uintptr_t>(m_mapping);
        m_data = m_mapping + ((kHugePage - address % kHugePage) % kHugePage);
        if (size >= kHugePage)
            ::madvise(m_data, size - size % kHugePage, MADV_HUGEPAGE); // advice: refusal is fine
    }
    ~FileMemory()
    {
        if (m_mapping)
            ::munmap(m_mapping, m_length);
    }
    FileMemory(const FileMemory &) = delete;
    FileMemory &operator=(const FileMemory &) = delete;

    char *data() const { return m_data; }

private:
    static constexpr size_t kHugePage = size_t(2) << 20;
    size_t m_length = 0;
    char *m_mapping = nullptr;
    char *m_data = nullptr;
};

} // namespace

Result<ByteSource::HeldBytes> ByteSource::readAll() const
{
    if (m_memory)
        return HeldBytes{m_memory, m_size, m_keepAlive};
    auto memory = std::make_shared<FileMemory>(size_t(std::max<qint64>(m_size, 1)));
    if (!memory->data()) {
        return Error{QStringLiteral("not enough memory for %1").arg(byteCountText(m_size)),
                     ErrorCode::OutOfMemory};
    }
    if (Status status = read(0, memory->data(), m_size); !status)
        return status.error();
    const char *data = memory->data();
    return HeldBytes{data, m_size, std::move(memory)};
}

bool ByteSource::changed() const
{
    if (m_fd < 0)
        return false;
    struct stat info;
    if (::fstat(m_fd, &info) != 0)
        return true;
    const timespec modified = modifiedTime(info);
    return qint64(info.st_size) != m_size || modified.tv_sec != m_modified.tv_sec
        || modified.tv_nsec != m_modified.tv_nsec;
}

QString ByteSource::changedMessage() const
{
    struct stat info;
    QString how = QStringLiteral("it was rewritten");
    if (m_fd >= 0 && ::fstat(m_fd, &info) == 0 && qint64(info.st_size) != m_size) {
        how = QStringLiteral("it was %1 bytes when opened, it is %2 bytes now")
                  .arg(m_size)
                  .arg(qint64(info.st_size));
    }
    return QStringLiteral("the file changed while it was being read (%1): read it again once it "
                          "is fully written")
        .arg(how);
}

// --- Records -------------------------------------------------------------------------------------

Status InflateBudget::take(qint64 bytes, const QString &record)
{
    const qint64 before = m_used.fetch_add(bytes);
    if (bytes <= m_limit - before)
        return success();
    m_used.fetch_sub(bytes);
    return Error{QStringLiteral("its compressed records inflate to more than the %1 allowed for "
                                "one read (record “%2” would bring them to %3): a zip bomb or a "
                                "damaged file. If you trust the file, raise the limit "
                                "(ifstudio-cli --max-inflated SIZE)")
                     .arg(byteCountText(m_limit), record, byteCountText(before + bytes)),
                 ErrorCode::OutOfMemory};
}

QString refusedInflation(const RecordRange &range)
{
    if (range.size > kMaxInflatedRecord
        || (range.compressedSize > 0 && range.size / range.compressedSize > kMaxDeflateRatio)
        || (range.compressedSize == 0 && range.size > 0)) {
        return QStringLiteral("compressed record “%1” claims to inflate from %2 to %3 bytes; "
                              "refused (a damaged file or a zip bomb)")
            .arg(range.name)
            .arg(range.compressedSize)
            .arg(range.size);
    }
    return {};
}

Status streamRecord(const ByteSource &source, const RecordRange &range, qint64 offset,
                    qint64 length, const ByteVisitor &visit)
{
    if (offset < 0 || length < 0 || offset > range.size || length > range.size - offset)
        return Error{QStringLiteral("bytes outside record “%1” were asked for").arg(range.name)};
    const bool whole = offset == 0 && length == range.size;
    uLong crc = crc32_z(0L, Z_NULL, 0);
    uLong *checked = whole && range.crc ? &crc : nullptr;
    Status status = success();
    if (range.method == 0) {
        status = streamStored(source, range, offset, length, visit, checked);
    } else if (const QString refused = refusedInflation(range); !refused.isEmpty()) {
        return Error{refused, ErrorCode::Format};
    } else {
        Inflater inflater(source, range);
        status = inflater.run(offset, length, visit, checked);
    }
    if (status && checked && quint32(crc) != *range.crc)
        status = Error{damagedCrc(range.name), ErrorCode::Format};
    // Data that does not match its directory in a file that changed: say that, not "damaged".
    if (!status && source.memory() == nullptr && status.error().code != ErrorCode::Io
        && source.changed()) {
        return Error{source.changedMessage(), ErrorCode::Io};
    }
    return status;
}

// --- FileStorageSource ---------------------------------------------------------------------------

FileStorageSource::FileStorageSource(std::shared_ptr<const ByteSource> source, RecordRange range,
                                     qint64 size, std::shared_ptr<InflateBudget> budget,
                                     QString fileName)
    : m_source(std::move(source))
    , m_range(std::move(range))
    , m_size(std::clamp<qint64>(size, 0, m_range.size))
    , m_budget(std::move(budget))
    , m_fileName(std::move(fileName))
{ }

Error FileStorageSource::failure(const QString &reason) const
{
    return Error{cannotReadCheckpoint(m_fileName, reason)};
}

Result<QByteArray> FileStorageSource::load() const
{
    QMutexLocker lock(&m_mutex);
    if (m_loaded)
        return *m_loaded;
    if (m_range.method != 0 && m_budget) {
        if (Status status = m_budget->take(m_range.size, m_range.name); !status)
            return failure(status.errorMessage());
    }
    QByteArray out;
    try {
        out = QByteArray(qsizetype(m_range.size), Qt::Uninitialized);
    } catch (const std::bad_alloc &) {
        return failure(QStringLiteral("not enough memory for the %1 of record “%2”")
                           .arg(byteCountText(m_range.size), m_range.name));
    }
    qint64 at = 0;
    const Status status
        = streamRecord(*m_source, m_range, 0, m_range.size, [&](const char *data, qint64 size) {
              std::memcpy(out.data() + at, data, size_t(size));
              at += size;
              return true;
          });
    if (!status)
        return failure(status.errorMessage());
    if (m_size < out.size())
        out.truncate(qsizetype(m_size)); // a record longer than its storage: the rest is unused
    m_loaded = out;
    return out;
}

Status FileStorageSource::visit(qint64 offset, qint64 length, const ByteVisitor &visit) const
{
    std::optional<QByteArray> loaded;
    {
        QMutexLocker lock(&m_mutex);
        loaded = m_loaded;
    }
    if (offset < 0 || length < 0 || offset > m_size || length > m_size - offset)
        return failure(
            QStringLiteral("bytes outside record “%1” were asked for").arg(m_range.name));
    if (loaded) {
        if (length > 0)
            visit(loaded->constData() + offset, length);
        return success();
    }
    const Status status = streamRecord(*m_source, m_range, offset, length, visit);
    if (!status)
        return failure(status.errorMessage());
    return success();
}

} // namespace ifs::ckpt::detail
