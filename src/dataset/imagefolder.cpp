#include "dataset/imagefolder.h"

#include "base/logging.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <mutex>
#include <sys/stat.h>
#include <thread>

namespace ifs {

const std::vector<std::string_view> kImageExtensions
    = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};

bool hasImageExtension(std::string_view fileName)
{
    for (std::string_view ext : kImageExtensions) {
        if (fileName.size() < ext.size())
            continue;
        const std::string_view tail = fileName.substr(fileName.size() - ext.size());
        bool same = true;
        for (size_t i = 0; i < ext.size() && same; ++i) {
            char c = tail[i];
            if (c >= 'A' && c <= 'Z')
                c = char(c - 'A' + 'a');
            same = c == ext[i];
        }
        if (same)
            return true;
    }
    return false;
}

QString Sample::displayPath() const
{
    return QFile::decodeName(
        QByteArray::fromRawData(relativePath.data(), qsizetype(relativePath.size())));
}

QString ImageFolderIndex::absolutePath(const Sample &sample) const
{
    return root + u'/' + sample.displayPath();
}

namespace {

QString decode(std::string_view bytes)
{
    return QFile::decodeName(QByteArray(bytes.data(), qsizetype(bytes.size())));
}

/// Python compares str by code point; for UTF-8 names that is byte order, which is also what
/// std::string's char_traits compare gives (it compares as unsigned char).
bool pythonLess(const std::string &a, const std::string &b)
{
    return a < b;
}

/// os.scandir()'s DirEntry.is_dir(): follows symlinks; an error (broken link) means "not a dir".
bool entryIsDir(int dirFd, const dirent *entry, struct stat *st)
{
    if (entry->d_type == DT_DIR) {
        st->st_ino = 0; // filled in lazily by the caller when it needs the identity
        return true;
    }
    if (entry->d_type != DT_LNK && entry->d_type != DT_UNKNOWN)
        return false;
    if (fstatat(dirFd, entry->d_name, st, 0) != 0)
        return false;
    return S_ISDIR(st->st_mode);
}

struct DirId
{
    dev_t dev;
    ino_t ino;
    bool operator==(const DirId &) const = default;
};

struct WalkedDir
{
    std::string relativePath; ///< relative to the dataset root
    std::vector<std::string> files; ///< valid image names, unsorted
};

struct ClassWalk
{
    std::vector<WalkedDir> dirs;
    QList<ScanIssue> issues;
    int64_t count = 0;
};

/// One class folder, as os.walk(target_dir, followlinks=True) walks it: every directory reached,
/// through symlinks too. A symlink that leads back to an ancestor would make os.walk() go round
/// until the OS refuses the path; we stop there and report it.
void walkClass(const std::string &rootBytes, const std::string &className, ClassWalk &out,
               int classIndex, const ScanCallbacks &callbacks, const std::atomic_bool *cancel)
{
    struct Pending
    {
        std::string relativePath;
        std::vector<DirId> ancestors;
    };
    std::vector<Pending> stack;
    stack.push_back({className, {}});
    int64_t lastReported = 0;

    while (!stack.empty()) {
        if (cancel && cancel->load(std::memory_order_relaxed))
            return;
        Pending current = std::move(stack.back());
        stack.pop_back();

        const std::string fullPath = rootBytes + '/' + current.relativePath;
        DIR *dir = opendir(fullPath.c_str());
        if (!dir) {
            const int error = errno;
            out.issues.append({ScanIssue::Kind::UnreadableFolder, decode(current.relativePath),
                               QStringLiteral("Cannot read the folder “%1”: %2. Its images are "
                                              "missing from the dataset (torchvision skips such "
                                              "folders silently).")
                                   .arg(decode(current.relativePath),
                                        QString::fromLocal8Bit(std::strerror(error)))});
            continue;
        }
        const int fd = dirfd(dir);
        struct stat self
        {
        };
        if (fstat(fd, &self) == 0)
            current.ancestors.push_back({self.st_dev, self.st_ino});

        WalkedDir walked;
        walked.relativePath = current.relativePath;
        std::vector<std::string> subdirs;
        while (const dirent *entry = readdir(dir)) {
            const char *name = entry->d_name;
            if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))
                continue;
            struct stat st
            {
            };
            if (entryIsDir(fd, entry, &st)) {
                // A real directory cannot loop; only symlinked ones need the identity check.
                if (entry->d_type != DT_DIR) {
                    const DirId id{st.st_dev, st.st_ino};
                    if (std::find(current.ancestors.begin(), current.ancestors.end(), id)
                        != current.ancestors.end()) {
                        const std::string rel = current.relativePath + '/' + name;
                        out.issues.append(
                            {ScanIssue::Kind::SymlinkLoop, decode(rel),
                             QStringLiteral("The symlink “%1” leads back to a folder that contains "
                                            "it. It was not followed; torchvision would follow it "
                                            "round and round until the system refuses the path, "
                                            "listing the same images many times. Remove the link.")
                                 .arg(decode(rel))});
                        continue;
                    }
                }
                subdirs.emplace_back(name);
            } else if (hasImageExtension(name)) {
                walked.files.emplace_back(name);
            }
        }
        closedir(dir);

        out.count += int64_t(walked.files.size());
        if (!walked.files.empty())
            out.dirs.push_back(std::move(walked));
        for (std::string &sub : subdirs)
            stack.push_back({current.relativePath + '/' + sub, current.ancestors});

        if (callbacks.classProgress && out.count != lastReported) {
            lastReported = out.count;
            callbacks.classProgress(classIndex, out.count);
        }
    }
}

} // namespace

Result<ImageFolderIndex> scanImageFolder(const QString &root, const ScanOptions &options,
                                         const ScanCallbacks &callbacks,
                                         const std::atomic_bool *cancel)
{
    ImageFolderIndex index;
    const QFileInfo rootInfo(root);
    index.root = QDir::cleanPath(rootInfo.absoluteFilePath());
    if (!rootInfo.exists())
        return Error{QStringLiteral("The folder “%1” does not exist.").arg(index.root)};
    if (!rootInfo.isDir())
        return Error{QStringLiteral("“%1” is a file, not a folder. Open the folder that holds one "
                                    "sub-folder per class.")
                         .arg(index.root)};

    const std::string rootBytes = QFile::encodeName(index.root).toStdString();
    DIR *dir = opendir(rootBytes.c_str());
    if (!dir) {
        return Error{QStringLiteral("Cannot read the folder “%1”: %2.")
                         .arg(index.root, QString::fromLocal8Bit(std::strerror(errno)))};
    }

    // find_classes(): every entry that is a directory, following symlinks; hidden ones included.
    std::vector<std::string> classNames;
    int64_t looseFiles = 0;
    {
        const int fd = dirfd(dir);
        while (const dirent *entry = readdir(dir)) {
            const char *name = entry->d_name;
            if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))
                continue;
            struct stat st
            {
            };
            if (entryIsDir(fd, entry, &st))
                classNames.emplace_back(name);
            else if (hasImageExtension(name))
                ++looseFiles;
        }
        closedir(dir);
    }
    std::sort(classNames.begin(), classNames.end(), pythonLess);
    for (const std::string &name : classNames)
        index.classes.append(decode(name));
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
    std::vector<ClassWalk> walks(classNames.size());
    std::atomic<size_t> next{0};
    auto worker = [&] {
        for (size_t i = next++; i < classNames.size(); i = next++) {
            if (cancel && cancel->load(std::memory_order_relaxed))
                return;
            walkClass(rootBytes, classNames[i], walks[i], int(i), callbacks, cancel);
        }
    };
    int threads = options.threads > 0 ? options.threads
                                      : int(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::min<int>(threads, int(classNames.size()));
    {
        std::vector<std::jthread> pool;
        for (int t = 1; t < threads; ++t)
            pool.emplace_back(worker);
        worker();
    }
    if (cancel && cancel->load()) {
        index.cancelled = true;
        return index;
    }

    // sorted(os.walk(...)) orders directories by their full path; files sort within each.
    size_t total = 0;
    for (const ClassWalk &walk : walks)
        total += size_t(walk.count);
    index.samples.reserve(total);
    QStringList emptyClasses;
    for (size_t c = 0; c < walks.size(); ++c) {
        ClassWalk &walk = walks[c];
        std::sort(walk.dirs.begin(), walk.dirs.end(), [](const WalkedDir &a, const WalkedDir &b) {
            return pythonLess(a.relativePath, b.relativePath);
        });
        for (WalkedDir &walked : walk.dirs) {
            std::sort(walked.files.begin(), walked.files.end(), pythonLess);
            for (const std::string &file : walked.files)
                index.samples.push_back({walked.relativePath + '/' + file, int(c)});
        }
        index.counts[c] = walk.count;
        index.issues += walk.issues;
        if (walk.count == 0) {
            emptyClasses.append(index.classes[int(c)]);
            index.issues.append({ScanIssue::Kind::EmptyClass, index.classes[int(c)],
                                 QStringLiteral("The class folder “%1” holds no image.")
                                     .arg(index.classes[int(c)])});
        }
    }

    if (!emptyClasses.isEmpty() && !options.allowEmpty) {
        QStringList extensions;
        for (std::string_view ext : kImageExtensions)
            extensions.append(QString::fromLatin1(ext.data(), qsizetype(ext.size())));
        index.refusal
            = QStringLiteral("No image in the class folder%1 %2 of “%3”, and torchvision's "
                             "ImageFolder refuses empty classes (supported extensions: %4). Add "
                             "images, remove the folder%1, or allow empty classes (--allow-empty; "
                             "allow_empty=True in newer torchvision).")
                  .arg(emptyClasses.size() > 1 ? QStringLiteral("s") : QString(),
                       QStringLiteral("“") + emptyClasses.join(QStringLiteral("”, “"))
                           + QStringLiteral("”"),
                       index.root, extensions.join(QStringLiteral(", ")));
    }
    qCDebug(lcDataset) << "scanned" << index.root << index.classes.size() << "classes"
                       << index.samples.size() << "samples";
    return index;
}

} // namespace ifs
