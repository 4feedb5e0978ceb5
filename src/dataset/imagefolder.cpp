#include "dataset/imagefolder.h"

#include "base/filenames.h"
#include "base/logging.h"

#include <QDir>
#include <QFileInfo>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ifs {

const std::vector<std::string_view> kImageExtensions
    = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};

namespace {

/// The last `n` bytes of `name` (n <= 8), ASCII lower-cased, as one big-endian number.
uint64_t lowerTail(std::string_view name, size_t n)
{
    uint64_t packed = 0;
    for (size_t i = name.size() - n; i < name.size(); ++i) {
        const char c = name[i];
        packed = packed << 8 | static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    return packed;
}

/// kImageExtensions packed as lowerTail() packs a name's end: the test for every file of a scan
/// is then a few integer comparisons.
struct PackedExtensions
{
    // Room for torchvision's 9 extensions of 4 or 5 bytes (each must fit in 8 bytes).
    uint64_t value[16] = {};
    uint64_t mask[16] = {}; ///< the low bytes a tail of the extension's size keeps
    size_t size[16] = {};
    size_t count = 0;
    size_t shortest = 8;
    size_t longest = 0;
};

const PackedExtensions &packedExtensions()
{
    static const PackedExtensions packed = [] {
        PackedExtensions p;
        for (std::string_view ext : kImageExtensions) {
            p.value[p.count] = lowerTail(ext, ext.size());
            p.mask[p.count] = ext.size() >= 8 ? ~uint64_t(0) : (uint64_t(1) << 8 * ext.size()) - 1;
            p.size[p.count++] = ext.size();
            p.shortest = std::min(p.shortest, ext.size());
            p.longest = std::max(p.longest, ext.size());
        }
        return p;
    }();
    return packed;
}

} // namespace

bool hasImageExtension(std::string_view fileName)
{
    const PackedExtensions &packed = packedExtensions();
    if (fileName.size() < packed.shortest)
        return false;
    // The extensions are ASCII, so lower-casing the ASCII letters of the tail is enough (Python's
    // str.lower() maps no other character to one of their letters).
    const size_t n = std::min(packed.longest, fileName.size());
    const uint64_t tail = lowerTail(fileName, n);
    for (size_t i = 0; i < packed.count; ++i) {
        if (packed.size[i] <= n && (tail & packed.mask[i]) == packed.value[i])
            return true;
    }
    return false;
}

namespace {

/// Maps the pages of a large, fresh buffer in one call (MADV_POPULATE_WRITE, Linux 5.14) instead
/// of one page fault each as it is written: a scan fills such buffers at once, and in a virtual
/// machine a fault costs more than zeroing its page. Best effort (an older kernel says EINVAL).
void prefault(void *data, size_t size)
{
#ifdef MADV_POPULATE_WRITE
    const auto page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (uintptr_t(data) + page - 1) & ~(page - 1);
    const uintptr_t end = (uintptr_t(data) + size) & ~(page - 1);
    if (end > begin)
        madvise(reinterpret_cast<void *>(begin), end - begin, MADV_POPULATE_WRITE);
#else
    (void)data;
    (void)size;
#endif
}

} // namespace

char *PathStore::allocate(size_t size)
{
    if (size > m_left) {
        // Growing blocks: a small dataset takes little, a large one few allocations.
        const size_t block = std::max(m_blockSize, size);
        m_blocks.push_back(std::make_unique_for_overwrite<char[]>(block));
        m_next = m_blocks.back().get();
        if (block >= 64 * 1024)
            prefault(m_next, block);
        m_left = block;
        m_blockSize = std::min<size_t>(m_blockSize * 2, size_t(1) << 20);
    }
    char *out = m_next;
    m_next += size;
    m_left -= size;
    return out;
}

std::string_view PathStore::add(std::string_view prefix, std::string_view name)
{
    const size_t size = prefix.size() + (name.empty() ? 0 : name.size() + 1);
    char *out = allocate(size);
    std::memcpy(out, prefix.data(), prefix.size());
    if (!name.empty()) {
        out[prefix.size()] = '/';
        std::memcpy(out + prefix.size() + 1, name.data(), name.size());
    }
    return {out, size};
}

void PathStore::adopt(PathStore &&other)
{
    for (std::unique_ptr<char[]> &block : other.m_blocks)
        m_blocks.push_back(std::move(block));
    other.m_blocks.clear();
    other.m_next = nullptr;
    other.m_left = 0;
}

QString Sample::displayPath() const
{
    return decodeFileName(relativePath());
}

QString ImageFolderIndex::absolutePath(const Sample &sample) const
{
    return root + u'/' + sample.displayPath();
}

void ImageFolderIndex::addSample(std::string_view relativePath, int classIndex)
{
    if (!paths)
        paths = std::make_shared<PathStore>();
    samples.push_back(Sample(paths->add(relativePath), classIndex));
}

namespace detail {
struct SampleMaker
{
    static Sample make(std::string_view storedPath, int classIndex)
    {
        return Sample(storedPath, classIndex);
    }
};
} // namespace detail

namespace {

/// os.scandir()'s DirEntry.is_dir(): follows symlinks; an error (broken link) means "not a dir".
/// `st` is filled in only when the entry had to be stat'ed (a symlink, or an unknown type).
bool entryIsDir(int dirFd, unsigned char type, const char *name, struct stat *st)
{
    if (type == DT_DIR)
        return true;
    if (type != DT_LNK && type != DT_UNKNOWN)
        return false;
    if (fstatat(dirFd, name, st, 0) != 0)
        return false;
    return S_ISDIR(st->st_mode);
}

bool isDotOrDotDot(const char *name)
{
    return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

struct DirId
{
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const DirId &) const = default;
};

/// A folder with images. Its image paths lie one after another in the worker's store, sorted,
/// each as a 4-byte length and the bytes ("folder/name"): no array of pointers is needed.
struct WalkedDir
{
    std::string_view path; ///< relative to the dataset root
    const char *firstEntry = nullptr;
    uint32_t count = 0;
};

/// An image name of the folder being listed: its place in Worker::names and the 8 bytes after
/// the prefix all of the folder's names share, as a big-endian number (most comparisons end
/// there, without touching the names).
struct NameRef
{
    uint64_t key;
    uint32_t offset;
    uint32_t size;
};

/// What one walking thread gathers over the classes it takes. The paths live in its own store,
/// in blocks that never move (no allocation per path); the index adopts the stores at the end.
struct Worker
{
    static constexpr size_t kBufferSize = 64 * 1024;

    PathStore store;
    std::vector<WalkedDir> dirs; ///< folders with images; each class's run sorted at its end

    // Scratch space, reused from folder to folder.
    struct Pending
    {
        std::string_view path;
        int parent; ///< into chain: the folder that listed this one; -1 for the class folder
    };
    /// The folders opened for the current class, each with the one that listed it. Their
    /// identities are looked up only when a symlinked folder needs the loop check.
    struct Opened
    {
        std::string_view path;
        int parent;
        bool known = false;
        DirId id;
    };
    std::vector<Pending> stack;
    std::vector<Opened> chain;
    std::string fullPath;
    std::string names; ///< the image names of the folder being listed
    std::vector<NameRef> refs;
    std::unique_ptr<char[]> buffer = std::make_unique_for_overwrite<char[]>(kBufferSize);
};

struct ClassWalk
{
    int worker = -1;
    uint32_t firstDir = 0;
    uint32_t dirCount = 0;
    int64_t count = 0;
    QList<ScanIssue> issues;
    QString unreadable; ///< why the class folder itself cannot be listed; empty when it can
};

/// Sorts the folder's image names as Python sorts them.
void sortNames(Worker &w, bool allValid)
{
    std::vector<NameRef> &refs = w.refs;
    const char *names = w.names.data();
    auto view = [names](const NameRef &r) {
        return std::string_view(names + r.offset, r.size);
    };
    if (!allValid) {
        std::sort(refs.begin(), refs.end(), [&](const NameRef &a, const NameRef &b) {
            return fileNameLess(view(a), view(b));
        });
        return;
    }
    // Valid UTF-8 sorts by code point when compared as bytes. The names of a folder often share
    // a long prefix ("img_000123.jpg"): key each by the 8 bytes after it.
    size_t common = refs.empty() ? 0 : refs.front().size;
    for (const NameRef &r : refs) {
        const std::string_view first = view(refs.front()), name = view(r);
        size_t i = 0;
        while (i < common && i < name.size() && first[i] == name[i])
            ++i;
        common = i;
    }
    for (NameRef &r : refs) {
        uint64_t key = 0;
        for (size_t i = common; i < common + 8; ++i)
            key = key << 8 | (i < r.size ? static_cast<unsigned char>(names[r.offset + i]) : 0u);
        r.key = key;
    }
    const size_t rest = common + 8;
    std::sort(refs.begin(), refs.end(), [&](const NameRef &a, const NameRef &b) {
        if (a.key != b.key)
            return a.key < b.key;
        // Equal keys: both names run past the keyed bytes (a name holds no NUL byte).
        return view(a).substr(std::min<size_t>(rest, a.size))
            < view(b).substr(std::min<size_t>(rest, b.size));
    });
}

/// Writes the folder's sorted image paths into the store, one contiguous run.
WalkedDir storeImages(Worker &w, std::string_view folder)
{
    size_t total = 0;
    for (const NameRef &r : w.refs)
        total += sizeof(uint32_t) + folder.size() + 1 + r.size;
    char *out = w.store.allocate(total);
    const WalkedDir walked{folder, out, uint32_t(w.refs.size())};
    for (const NameRef &r : w.refs) {
        const uint32_t size = uint32_t(folder.size() + 1 + r.size);
        std::memcpy(out, &size, sizeof size);
        out += sizeof size;
        std::memcpy(out, folder.data(), folder.size());
        out[folder.size()] = '/';
        std::memcpy(out + folder.size() + 1, w.names.data() + r.offset, r.size);
        out += size;
    }
    return walked;
}

QString unreadableMessage(const QString &path, int error)
{
    return QStringLiteral("Cannot read the folder “%1”: %2. Its images are missing from the "
                          "dataset (torchvision skips such folders silently).")
        .arg(path, QString::fromLocal8Bit(std::strerror(error)));
}

QString loopMessage(const QString &path)
{
    return QStringLiteral("The symlink “%1” leads back to a folder that contains it. It was not "
                          "followed; torchvision would follow it round and round until the system "
                          "refuses the path, listing the same images many times. Remove the link.")
        .arg(path);
}

/// True when the symlinked folder `id` is the folder `from` of the chain or one of the folders
/// that led to it.
bool leadsBack(Worker &w, const std::string &rootBytes, int from, const DirId &id)
{
    for (int a = from; a >= 0; a = w.chain[size_t(a)].parent) {
        Worker::Opened &opened = w.chain[size_t(a)];
        if (!opened.known) {
            const std::string path = rootBytes + '/' + std::string(opened.path);
            struct stat st
            {
            };
            if (::stat(path.c_str(), &st) == 0)
                opened.id = {st.st_dev, st.st_ino};
            opened.known = true;
        }
        if (opened.id == id)
            return true;
    }
    return false;
}

/// Lists one folder (open, getdents64, close: no DIR buffer and no stat per folder): its image
/// names go to w.refs, sorted and then stored, its sub-folders onto w.stack. Returns the number
/// of images; -1 with errno set when the folder cannot be opened.
int64_t listFolder(const std::string &rootBytes, const Worker::Pending &current, Worker &w,
                   ClassWalk &out)
{
    w.fullPath.assign(rootBytes).append(1, '/').append(current.path);
    const int fd = ::open(w.fullPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    w.chain.push_back({current.path, current.parent, false, {}});
    const int self = int(w.chain.size()) - 1;

    w.names.clear();
    w.refs.clear();
    bool allValid = true;
    // Filled in by entryIsDir() for a symlink; cleared once per folder, not once per file (a
    // 144-byte memset per file showed in the profile).
    struct stat st
    {
    };
    for (;;) {
        const ssize_t got = getdents64(fd, w.buffer.get(), Worker::kBufferSize);
        if (got <= 0)
            break; // the end, or an error readdir() would end on too
        for (ssize_t at = 0; at < got;) {
            const auto *entry = reinterpret_cast<const struct dirent64 *>(w.buffer.get() + at);
            at += entry->d_reclen;
            const char *name = entry->d_name;
            if (isDotOrDotDot(name))
                continue;
            const std::string_view nameView(name);
            if (entryIsDir(fd, entry->d_type, name, &st)) {
                // A real directory cannot loop; only symlinked ones need the identity check.
                if (entry->d_type != DT_DIR
                    && leadsBack(w, rootBytes, self, {st.st_dev, st.st_ino})) {
                    const QString rel = decodeFileName(std::string(current.path) + '/' + name);
                    out.issues.append({ScanIssue::Kind::SymlinkLoop, rel, loopMessage(rel)});
                    continue;
                }
                w.stack.push_back({w.store.add(current.path, nameView), self});
            } else if (hasImageExtension(nameView)) {
                w.refs.push_back({0, uint32_t(w.names.size()), uint32_t(nameView.size())});
                w.names.append(nameView);
                allValid = allValid && isValidUtf8(nameView);
            }
        }
    }
    ::close(fd);

    if (w.refs.empty())
        return 0;
    sortNames(w, allValid);
    w.dirs.push_back(storeImages(w, current.path));
    return int64_t(w.refs.size());
}

/// One class folder, as os.walk(target_dir, followlinks=True) walks it: every directory reached,
/// through symlinks too. A symlink that leads back to an ancestor would make os.walk() go round
/// until the OS refuses the path; we stop there and report it. The class's folders end up in
/// w.dirs in torchvision's order (sorted(os.walk(...))), each with its sorted images.
void walkClass(const std::string &rootBytes, std::string_view className, Worker &w, ClassWalk &out,
               int classIndex, const ScanCallbacks &callbacks, const std::atomic_bool *cancel)
{
    w.stack.clear();
    w.chain.clear();
    w.stack.push_back({className, -1});
    out.firstDir = uint32_t(w.dirs.size());
    int64_t lastReported = 0;

    while (!w.stack.empty()) {
        if (cancel && cancel->load(std::memory_order_relaxed))
            return;
        const Worker::Pending current = w.stack.back();
        w.stack.pop_back();
        const int64_t found = listFolder(rootBytes, current, w, out);
        if (found < 0) {
            const int error = errno;
            const QString rel = decodeFileName(current.path);
            out.issues.append(
                {ScanIssue::Kind::UnreadableFolder, rel, unreadableMessage(rel, error)});
            if (current.path.size() == className.size())
                out.unreadable = QString::fromLocal8Bit(std::strerror(error));
            continue;
        }
        out.count += found;
        if (callbacks.classProgress && out.count != lastReported) {
            lastReported = out.count;
            callbacks.classProgress(classIndex, out.count);
        }
    }

    // sorted(os.walk(...)) orders the folders by their full path.
    out.dirCount = uint32_t(w.dirs.size() - out.firstDir);
    const auto begin = w.dirs.begin() + out.firstDir;
    const bool allValid
        = std::all_of(begin, w.dirs.end(), [](const WalkedDir &d) { return isValidUtf8(d.path); });
    std::sort(begin, w.dirs.end(), [allValid](const WalkedDir &a, const WalkedDir &b) {
        return allValid ? a.path < b.path : fileNameLess(a.path, b.path);
    });
}

/// The class folders of the root (find_classes(): every entry that is a directory, following
/// symlinks, hidden ones included), sorted; `looseFiles` counts the images beside them.
std::vector<std::string> listClasses(DIR *dir, int64_t &looseFiles)
{
    std::vector<std::string> classNames;
    const int fd = dirfd(dir);
    bool allValid = true;
    while (const dirent *entry = readdir(dir)) {
        const char *name = entry->d_name;
        if (isDotOrDotDot(name))
            continue;
        struct stat st
        {
        };
        if (entryIsDir(fd, entry->d_type, name, &st)) {
            classNames.emplace_back(name);
            allValid = allValid && isValidUtf8(classNames.back());
        } else if (hasImageExtension(name)) {
            ++looseFiles;
        }
    }
    closedir(dir);
    if (allValid)
        std::sort(classNames.begin(), classNames.end());
    else
        std::sort(classNames.begin(), classNames.end(),
                  [](const std::string &a, const std::string &b) { return fileNameLess(a, b); });
    return classNames;
}

QString refusalMessage(const QString &root, const QStringList &unreadable, const QString &why,
                       const QStringList &empty)
{
    auto quotedList = [](const QStringList &names) -> QString {
        return QStringLiteral("“") + names.join(QStringLiteral("”, “")) + QStringLiteral("”");
    };
    auto plural = [](const QStringList &names) -> QString {
        return names.size() > 1 ? QStringLiteral("s") : QString();
    };
    QStringList sentences;
    if (!unreadable.isEmpty()) {
        sentences.append(
            QStringLiteral("Cannot read the class folder%1 %2 of “%3”: %4. torchvision's "
                           "ImageFolder finds no image in %5 and refuses the dataset. Give "
                           "yourself read access (chmod -R u+rX “%6”) or remove the folder%1.")
                .arg(plural(unreadable), quotedList(unreadable), root, why,
                     unreadable.size() > 1 ? QStringLiteral("them") : QStringLiteral("it"),
                     root + u'/' + unreadable.constFirst()));
    }
    if (!empty.isEmpty()) {
        QStringList extensions;
        for (std::string_view ext : kImageExtensions)
            extensions.append(QString::fromLatin1(ext.data(), qsizetype(ext.size())));
        sentences.append(
            QStringLiteral("No image in the class folder%1 %2 of “%3”, and torchvision's "
                           "ImageFolder refuses empty classes (supported extensions: %4). Add "
                           "images, remove the folder%1, or allow empty classes (--allow-empty; "
                           "allow_empty=True in newer torchvision).")
                .arg(plural(empty), quotedList(empty), root,
                     extensions.join(QStringLiteral(", "))));
    }
    return sentences.join(u' ');
}

} // namespace

Result<ImageFolderIndex> scanImageFolder(const QString &root, const ScanOptions &options,
                                         const ScanCallbacks &callbacks,
                                         const std::atomic_bool *cancel)
{
    ImageFolderIndex index;
    index.root = QDir::cleanPath(QFileInfo(root).absoluteFilePath());
    // By its bytes: the root may hold undecodable bytes too (base/filenames.h).
    const std::string rootBytes = encodeFileName(index.root).toStdString();
    struct stat rootStat
    {
    };
    if (::stat(rootBytes.c_str(), &rootStat) != 0)
        return Error{QStringLiteral("The folder “%1” does not exist.").arg(index.root)};
    if (!S_ISDIR(rootStat.st_mode))
        return Error{QStringLiteral("“%1” is a file, not a folder. Open the folder that holds one "
                                    "sub-folder per class.")
                         .arg(index.root)};

    DIR *dir = opendir(rootBytes.c_str());
    if (!dir) {
        return Error{QStringLiteral("Cannot read the folder “%1”: %2.")
                         .arg(index.root, QString::fromLocal8Bit(std::strerror(errno)))};
    }
    int64_t looseFiles = 0;
    const std::vector<std::string> classNames = listClasses(dir, looseFiles);
    index.classes.reserve(qsizetype(classNames.size()));
    for (const std::string &name : classNames)
        index.classes.append(decodeFileName(name));
    index.counts.assign(classNames.size(), 0);

    if (classNames.empty()) {
        index.refusal
            = QStringLiteral(
                  "No class folders in “%1”. ImageFolder expects one sub-folder per class "
                  "holding that class's images (root/<class>/<image>)%2. Open the folder "
                  "above the class folders, or move the images into class folders.")
                  .arg(
                      index.root,
                      looseFiles > 0
                          ? QStringLiteral("; this folder holds %1 images directly").arg(looseFiles)
                          : QString());
        return index;
    }
    if (callbacks.classesFound)
        callbacks.classesFound(index.classes);

    // Walk the classes in parallel; each walk is independent and the order is restored below.
    int threads = options.threads > 0 ? options.threads
                                      : int(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::min<int>(threads, int(classNames.size()));
    std::vector<Worker> workers(static_cast<size_t>(threads));
    std::vector<ClassWalk> walks(classNames.size());
    std::atomic<size_t> next{0};
    auto work = [&](int t) {
        for (size_t i = next++; i < classNames.size(); i = next++) {
            if (cancel && cancel->load(std::memory_order_relaxed))
                return;
            walks[i].worker = t;
            walkClass(rootBytes, classNames[i], workers[size_t(t)], walks[i], int(i), callbacks,
                      cancel);
        }
    };
    {
        std::vector<std::jthread> pool;
        for (int t = 1; t < threads; ++t)
            pool.emplace_back(work, t);
        work(0);
    }
    if (cancel && cancel->load()) {
        index.cancelled = true;
        return index;
    }

    size_t total = 0;
    for (const ClassWalk &walk : walks)
        total += size_t(walk.count);
    index.samples.reserve(total);
    prefault(index.samples.data(), total * sizeof(Sample));
    QStringList emptyClasses, unreadableClasses;
    QString unreadableWhy;
    for (size_t c = 0; c < walks.size(); ++c) {
        const ClassWalk &walk = walks[c];
        const Worker &w = workers[size_t(walk.worker)];
        for (uint32_t d = walk.firstDir; d < walk.firstDir + walk.dirCount; ++d) {
            const WalkedDir &walked = w.dirs[d];
            const char *entry = walked.firstEntry;
            for (uint32_t f = 0; f < walked.count; ++f) {
                uint32_t size = 0;
                std::memcpy(&size, entry, sizeof size);
                entry += sizeof size;
                index.samples.push_back(detail::SampleMaker::make({entry, size}, int(c)));
                entry += size;
            }
        }
        index.counts[c] = walk.count;
        index.issues += walk.issues;
        if (walk.count == 0) {
            const QString &name = index.classes[int(c)];
            if (walk.unreadable.isEmpty()) {
                emptyClasses.append(name);
            } else {
                unreadableClasses.append(name);
                if (unreadableWhy.isEmpty())
                    unreadableWhy = walk.unreadable;
            }
            index.issues.append(
                {ScanIssue::Kind::EmptyClass, name,
                 QStringLiteral("The class folder “%1” holds no image.").arg(name)});
        }
    }
    index.paths = std::make_shared<PathStore>();
    for (Worker &w : workers)
        index.paths->adopt(std::move(w.store));

    if ((!emptyClasses.isEmpty() || !unreadableClasses.isEmpty()) && !options.allowEmpty)
        index.refusal = refusalMessage(index.root, unreadableClasses, unreadableWhy, emptyClasses);
    qCDebug(lcDataset) << "scanned" << index.root << index.classes.size() << "classes"
                       << index.samples.size() << "samples";
    return index;
}

} // namespace ifs
