// Moves flagged files out of a dataset (never deletes them) and back again.
#include "dataset/quarantine.h"

#include "base/filenames.h"
#include "base/logging.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>
#include <QSet>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace ifs {

namespace {

constexpr int kManifestVersion = 1;

QString quoted(const QString &name)
{
    return u'“' + QDir::toNativeSeparators(name) + u'”';
}

QString cleanAbsolute(const QString &path)
{
    return QDir::cleanPath(QFileInfo(path).absoluteFilePath());
}

/// `path` relative to `root` when it lies strictly inside it, else empty.
QString relativeInside(const QString &root, const QString &path)
{
    const QString prefix = root.endsWith(u'/') ? root : root + u'/';
    if (!path.startsWith(prefix) || path.size() == prefix.size())
        return {};
    return path.mid(prefix.size());
}

/// What stat() and lstat() say about a path, by its bytes: names may hold undecodable bytes
/// (base/filenames.h), which QFileInfo would look up under another name.
struct PathState
{
    bool exists = false; ///< follows symlinks, as QFileInfo::exists()
    bool isDir = false; ///< follows symlinks
    bool isSymLink = false;
};

PathState stateOf(const QString &path)
{
    const QByteArray bytes = encodeFileName(path);
    PathState state;
    struct stat st
    {
    };
    if (::lstat(bytes.constData(), &st) == 0)
        state.isSymLink = S_ISLNK(st.st_mode);
    if (::stat(bytes.constData(), &st) == 0) {
        state.exists = true;
        state.isDir = S_ISDIR(st.st_mode);
    }
    return state;
}

std::filesystem::path nativePath(const QString &path)
{
    const QByteArray bytes = encodeFileName(path);
    return std::filesystem::path(std::string(bytes.constData(), size_t(bytes.size())));
}

QString errnoText(int error)
{
    return QString::fromLocal8Bit(std::strerror(error));
}

/// Copies `from` into `to` through a temporary file beside it (complete or not at all, flushed
/// to disk), checks the size, keeps the modification time and permissions, then removes `from`.
/// For moves across file systems; by the names' bytes throughout.
bool copyThenRemove(const QString &from, const QString &to, QString *why)
{
    FileNameFile in(from);
    if (!in.open(QIODevice::ReadOnly)) {
        *why = in.errorString();
        return false;
    }
    struct stat source
    {
    };
    if (::fstat(in.handle(), &source) != 0) {
        *why = errnoText(errno);
        return false;
    }
    const QByteArray target = encodeFileName(to);
    const QByteArray partial = target + ".quarantine-part";
    const int fd = ::open(partial.constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    QFile out;
    if (fd < 0 || !out.open(fd, QIODevice::WriteOnly, QFileDevice::AutoCloseHandle)) {
        *why = errnoText(errno);
        if (fd >= 0)
            ::close(fd);
        return false;
    }
    auto fail = [&](const QString &reason) {
        *why = reason;
        out.close();
        ::unlink(partial.constData());
        return false;
    };
    QByteArray chunk(1 << 20, Qt::Uninitialized);
    int64_t copied = 0;
    for (;;) {
        const qint64 n = in.read(chunk.data(), chunk.size());
        if (n < 0)
            return fail(in.errorString());
        if (n == 0)
            break;
        if (out.write(chunk.constData(), n) != n)
            return fail(out.errorString());
        copied += n;
    }
    if (copied != int64_t(source.st_size))
        return fail(QStringLiteral("copied %1 of %2 bytes").arg(copied).arg(source.st_size));
    if (!out.flush() || ::fsync(out.handle()) != 0)
        return fail(out.errorString());
    // The original's permissions and modification time, as a move would keep them.
    ::fchmod(out.handle(), source.st_mode & 07777);
    const struct timespec times[2] = {{0, UTIME_OMIT}, source.st_mtim};
    ::futimens(out.handle(), times);
    out.close();
    if (::rename(partial.constData(), target.constData()) != 0) {
        const int error = errno;
        ::unlink(partial.constData());
        *why = errnoText(error);
        return false;
    }
    if (fileSizeOf(to) != int64_t(source.st_size)) {
        *why = QStringLiteral("the copy has the wrong size");
        ::unlink(target.constData()); // our own copy; the original is untouched
        return false;
    }
    in.close();
    if (::unlink(encodeFileName(from).constData()) != 0) {
        *why = QStringLiteral("the original could not be removed after copying");
        ::unlink(target.constData());
        return false;
    }
    return true;
}

/// Moves one file; the destination must not exist. Falls back to copying across file systems.
bool moveFile(const QString &from, const QString &to, QString *why)
{
    if (stateOf(to).exists) {
        *why = QStringLiteral("%1 already exists").arg(quoted(to));
        return false;
    }
    std::error_code error;
    const std::filesystem::path target = nativePath(to);
    std::filesystem::create_directories(target.parent_path(), error);
    if (error) {
        *why = QStringLiteral("cannot create the folder %1")
                   .arg(quoted(QFileInfo(to).absolutePath()));
        return false;
    }
    std::filesystem::rename(nativePath(from), target, error);
    if (!error)
        return true;
    if (error == std::errc::cross_device_link)
        return copyThenRemove(from, to, why);
    *why = QString::fromStdString(error.message());
    return false;
}

/// Removes the empty folders under (and including) `folder`, deepest first. rmdir() refuses
/// non-empty folders, so nothing but empty folders can go. Symlinks are not followed.
void removeEmptyFolders(const std::filesystem::path &folder)
{
    std::error_code error;
    std::vector<std::filesystem::path> children;
    for (std::filesystem::directory_iterator it(folder, error), end; !error && it != end;
         it.increment(error)) {
        std::error_code type;
        if (it->is_directory(type) && !it->is_symlink(type))
            children.push_back(it->path());
    }
    for (const std::filesystem::path &child : children)
        removeEmptyFolders(child);
    ::rmdir(folder.c_str());
}

void removeEmptyFolders(const QString &folder)
{
    removeEmptyFolders(nativePath(folder));
}

/// Moves back, newest first, what a failed operation already moved.
void rollBack(const QList<QuarantineEntry> &moved, bool towardsQuarantine)
{
    for (auto it = moved.crbegin(); it != moved.crend(); ++it) {
        QString why;
        const QString &from = towardsQuarantine ? it->quarantinedPath : it->originalPath;
        const QString &to = towardsQuarantine ? it->originalPath : it->quarantinedPath;
        if (!moveFile(from, to, &why))
            qCWarning(lcDataset) << "Rolling back: cannot move" << from << "to" << to << ":" << why;
    }
}

QString manifestName(const QStringList &relativePaths)
{
    // A file (or folder) at the dataset's top level could be called manifest.json too.
    QSet<QString> taken;
    for (const QString &relative : relativePaths)
        taken.insert(relative.section(u'/', 0, 0));
    QString name = QStringLiteral("manifest.json");
    for (int n = 2; taken.contains(name); ++n)
        name = QStringLiteral("manifest-%1.json").arg(n);
    return name;
}

Status writeManifest(const QString &path, const QString &datasetRoot, const QuarantineBatch &batch)
{
    // A relabelling's files stay in the dataset: the manifest says so, and readQuarantineManifest()
    // then accepts destinations inside the dataset instead of inside the batch folder.
    QJsonArray entries;
    for (const QuarantineEntry &entry : batch.entries) {
        entries.append(QJsonObject{
            {QStringLiteral("original"), entry.originalPath},
            {QStringLiteral("quarantined"), entry.quarantinedPath},
            {QStringLiteral("size"),
             double(std::max<int64_t>(0, fileSizeOf(entry.quarantinedPath)))},
        });
    }
    QJsonObject root{
        {QStringLiteral("version"), kManifestVersion},
        {QStringLiteral("created"), QDateTime::currentDateTime().toString(Qt::ISODate)},
        {QStringLiteral("dataset_root"), datasetRoot},
        {QStringLiteral("entries"), entries},
    };
    if (batch.relabel)
        root[QStringLiteral("kind")] = QStringLiteral("relabel");
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return Error{QStringLiteral("Cannot write the quarantine manifest %1: %2")
                         .arg(quoted(path), file.errorString())};
    file.write(QJsonDocument(root).toJson(QJsonDocument::Indented));
    if (!file.commit())
        return Error{QStringLiteral("Cannot write the quarantine manifest %1: %2")
                         .arg(quoted(path), file.errorString())};
    return success();
}

/// A new, empty, time-stamped batch folder under `folder` (created when missing).
Result<QString> createBatchFolder(const QString &folder, const QString &suffix)
{
    if (!QDir().mkpath(folder))
        return Error{QStringLiteral("Cannot create the quarantine folder %1.").arg(quoted(folder))};
    const QString stamp
        = QDateTime::currentDateTime().toString(QStringLiteral("yyyy-MM-ddTHH-mm-ss")) + suffix;
    QString batchFolder = folder + u'/' + stamp;
    for (int n = 2; !QDir(folder).mkdir(batchFolder); ++n) {
        if (!QFileInfo::exists(batchFolder) || n > 1000)
            return Error{QStringLiteral("Cannot create a batch folder in %1.").arg(quoted(folder))};
        batchFolder = folder + u'/' + stamp + QStringLiteral("-%1").arg(n);
    }
    return batchFolder;
}

/// Moves the planned entries one by one into `batch`, then writes its manifest. On any failure
/// moves back what it moved, removes the batch folder and says "Nothing was moved."
Status moveBatch(QuarantineBatch &batch, const QList<QuarantineEntry> &planned, const QString &root,
                 const QString &where)
{
    for (const QuarantineEntry &entry : planned) {
        QString why;
        if (!moveFile(entry.originalPath, entry.quarantinedPath, &why)) {
            rollBack(batch.entries, true);
            removeEmptyFolders(batch.batchFolder);
            return Error{QStringLiteral("Cannot move %1 %2: %3. Nothing was moved.")
                             .arg(quoted(entry.originalPath), where, why)};
        }
        batch.entries.append(entry);
    }
    const Status written = writeManifest(batch.manifestPath, root, batch);
    if (!written) {
        rollBack(batch.entries, true);
        removeEmptyFolders(batch.batchFolder);
        return Error{written.errorMessage() + QStringLiteral(". Nothing was moved.")};
    }
    return success();
}

} // namespace

QString defaultQuarantineFolder(const QString &datasetRoot)
{
    const QFileInfo root(cleanAbsolute(datasetRoot));
    QString name = root.fileName();
    if (name.isEmpty())
        name = QStringLiteral("dataset");
    return QDir::cleanPath(root.absolutePath() + u'/' + name + QStringLiteral(".quarantine"));
}

Result<QuarantineBatch> quarantineFiles(const QString &datasetRoot, const QStringList &files,
                                        const QString &quarantineFolder)
{
    const QString root = cleanAbsolute(datasetRoot);
    if (!stateOf(root).isDir)
        return Error{QStringLiteral("The dataset folder %1 does not exist.").arg(quoted(root))};
    if (files.isEmpty())
        return Error{QStringLiteral("No files to quarantine.")};
    const QString folder = cleanAbsolute(quarantineFolder);
    if (folder == root || !relativeInside(root, folder).isEmpty())
        return Error{QStringLiteral("The quarantine folder %1 is inside the dataset folder %2, "
                                    "where torchvision would take it for a class. Choose a folder "
                                    "outside the dataset.")
                         .arg(quoted(folder), quoted(root))};

    // Check everything before moving anything.
    QStringList originals, relatives;
    QSet<QString> seen;
    for (const QString &file : files) {
        const QString path = cleanAbsolute(file);
        const QString relative = relativeInside(root, path);
        if (relative.isEmpty())
            return Error{QStringLiteral("%1 is outside the dataset folder %2: only files inside it "
                                        "can be quarantined.")
                             .arg(quoted(path), quoted(root))};
        const PathState info = stateOf(path);
        if (!info.exists && !info.isSymLink)
            return Error{QStringLiteral("%1 does not exist (any more?).").arg(quoted(path))};
        if (info.isDir && !info.isSymLink)
            return Error{
                QStringLiteral("%1 is a folder: only files can be quarantined.").arg(quoted(path))};
        if (seen.contains(path))
            continue;
        seen.insert(path);
        originals += path;
        relatives += relative;
    }

    auto batchFolder = createBatchFolder(folder, QString());
    if (!batchFolder)
        return batchFolder.error();
    QuarantineBatch batch;
    batch.batchFolder = batchFolder.value();
    batch.manifestPath = batch.batchFolder + u'/' + manifestName(relatives);
    QList<QuarantineEntry> planned;
    for (qsizetype i = 0; i < originals.size(); ++i)
        planned.append({originals[i], batch.batchFolder + u'/' + relatives[i]});
    if (Status moved = moveBatch(batch, planned, root, QStringLiteral("into quarantine")); !moved)
        return moved.error();
    qCInfo(lcDataset) << "Quarantined" << batch.entries.size() << "files into" << batch.batchFolder;
    return batch;
}

namespace {

/// A free name for `fileName` in `folder`: itself, else "<stem>-2.<ext>", "<stem>-3.<ext>", …
QString freeNameIn(const QString &folder, const QString &fileName, const QSet<QString> &planned)
{
    const qsizetype dot = fileName.lastIndexOf(u'.');
    const QString stem = dot > 0 ? fileName.left(dot) : fileName;
    const QString suffix = dot > 0 ? fileName.mid(dot) : QString();
    QString path = folder + u'/' + fileName;
    for (int n = 2; stateOf(path).exists || stateOf(path).isSymLink || planned.contains(path); ++n)
        path = folder + u'/' + stem + QStringLiteral("-%1").arg(n) + suffix;
    return path;
}

bool isClassFolderName(const QString &name)
{
    return !name.isEmpty() && name != u"." && name != u".." && !name.contains(u'/')
        && !name.startsWith(u'.');
}

} // namespace

Result<QuarantineBatch> relabelFiles(const QString &datasetRoot, const QList<RelabelMove> &moves,
                                     const QString &quarantineFolder)
{
    const QString root = cleanAbsolute(datasetRoot);
    if (!stateOf(root).isDir)
        return Error{QStringLiteral("The dataset folder %1 does not exist.").arg(quoted(root))};
    if (moves.isEmpty())
        return Error{QStringLiteral("No files to relabel.")};
    const QString folder = cleanAbsolute(quarantineFolder);
    if (folder == root || !relativeInside(root, folder).isEmpty())
        return Error{QStringLiteral("The manifest folder %1 is inside the dataset folder %2, "
                                    "where torchvision would take it for a class. Choose a folder "
                                    "outside the dataset.")
                         .arg(quoted(folder), quoted(root))};
    // Check everything before moving anything.
    QList<QuarantineEntry> planned;
    QSet<QString> seen, targets;
    for (const RelabelMove &move : moves) {
        const QString path = cleanAbsolute(move.file);
        const QString relative = relativeInside(root, path);
        // The file's class folder is its parent; it must lie inside the dataset too.
        const QString classFolder = QFileInfo(path).absolutePath();
        if (relative.isEmpty() || relativeInside(root, classFolder).isEmpty())
            return Error{QStringLiteral("%1 is not in a class folder of the dataset %2: only "
                                        "images inside it can be relabelled.")
                             .arg(quoted(path), quoted(root))};
        if (!isClassFolderName(move.targetClass))
            return Error{QStringLiteral("“%1” is not a class folder name.").arg(move.targetClass)};
        const PathState info = stateOf(path);
        if (!info.exists && !info.isSymLink)
            return Error{QStringLiteral("%1 does not exist (any more?).").arg(quoted(path))};
        if (info.isDir && !info.isSymLink)
            return Error{
                QStringLiteral("%1 is a folder: only files can be relabelled.").arg(quoted(path))};
        const QString targetFolder
            = QFileInfo(classFolder).absolutePath() + u'/' + move.targetClass;
        if (targetFolder == classFolder || seen.contains(path))
            continue; // already in that class
        // Only existing classes: a new folder would change class_to_idx (and an undo would leave
        // it empty, which ImageFolder refuses).
        if (!stateOf(targetFolder).isDir)
            return Error{QStringLiteral("There is no class folder %1 to move %2 into.")
                             .arg(quoted(targetFolder), quoted(path))};
        seen.insert(path);
        const QString target = freeNameIn(targetFolder, QFileInfo(path).fileName(), targets);
        targets.insert(target);
        planned.append({path, target});
    }
    if (planned.isEmpty())
        return Error{QStringLiteral("Every file is in its class already: nothing to relabel.")};
    auto batchFolder = createBatchFolder(folder, QStringLiteral("-relabel"));
    if (!batchFolder)
        return batchFolder.error();
    QuarantineBatch batch;
    batch.relabel = true;
    batch.batchFolder = batchFolder.value();
    batch.manifestPath = batch.batchFolder + QStringLiteral("/manifest.json");
    if (Status moved = moveBatch(batch, planned, root, QStringLiteral("to its new class")); !moved)
        return moved.error();
    qCInfo(lcDataset) << "Relabelled" << batch.entries.size() << "files; manifest"
                      << batch.manifestPath;
    return batch;
}

Status undoQuarantine(const QuarantineBatch &batch)
{
    if (batch.entries.isEmpty())
        return Error{QStringLiteral("The quarantine batch %1 lists no files.")
                         .arg(quoted(batch.batchFolder))};
    for (const QuarantineEntry &entry : batch.entries) {
        const PathState quarantined = stateOf(entry.quarantinedPath);
        if (!quarantined.exists && !quarantined.isSymLink)
            return Error{QStringLiteral("%1 is no longer in quarantine. Nothing was moved back.")
                             .arg(quoted(entry.quarantinedPath))};
        const PathState original = stateOf(entry.originalPath);
        if (original.exists || original.isSymLink)
            return Error{QStringLiteral("%1 exists again, so its quarantined copy cannot go back. "
                                        "Nothing was moved back; move or rename that file first.")
                             .arg(quoted(entry.originalPath))};
    }
    QList<QuarantineEntry> movedBack;
    for (const QuarantineEntry &entry : batch.entries) {
        QString why;
        if (!moveFile(entry.quarantinedPath, entry.originalPath, &why)) {
            rollBack(movedBack, false);
            return Error{QStringLiteral("Cannot move %1 back: %2. Nothing was moved back.")
                             .arg(quoted(entry.quarantinedPath), why)};
        }
        movedBack.append(entry);
    }
    // The batch is spent: its manifest goes, and so do its folders once empty (anything else
    // someone put there stays).
    if (!batch.manifestPath.isEmpty())
        QFile::remove(batch.manifestPath);
    if (!batch.batchFolder.isEmpty())
        removeEmptyFolders(batch.batchFolder);
    qCInfo(lcDataset) << "Moved" << batch.entries.size() << "files back from" << batch.batchFolder;
    return success();
}

Result<QuarantineBatch> readQuarantineManifest(const QString &manifestPath)
{
    QFile file(manifestPath);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("Cannot open the quarantine manifest %1: %2")
                         .arg(quoted(manifestPath), file.errorString())};
    QJsonParseError parseError;
    const QJsonDocument document = QJsonDocument::fromJson(file.readAll(), &parseError);
    if (document.isNull())
        return Error{QStringLiteral("The quarantine manifest %1 is not valid JSON: %2")
                         .arg(quoted(manifestPath), parseError.errorString())};
    const QJsonObject root = document.object();
    if (root.value(QStringLiteral("version")).toInt() != kManifestVersion)
        return Error{QStringLiteral("The quarantine manifest %1 has an unknown version.")
                         .arg(quoted(manifestPath))};
    QuarantineBatch batch;
    batch.manifestPath = cleanAbsolute(manifestPath);
    batch.batchFolder = QFileInfo(batch.manifestPath).absolutePath();
    batch.relabel = root.value(QStringLiteral("kind")).toString() == u"relabel";
    // A relabelling moved files within the dataset: both ends must lie inside it.
    const QString datasetRoot
        = cleanAbsolute(root.value(QStringLiteral("dataset_root")).toString());
    const QString destinations = batch.relabel ? datasetRoot : batch.batchFolder;
    const QJsonArray entries = root.value(QStringLiteral("entries")).toArray();
    for (const QJsonValue &value : entries) {
        const QJsonObject object = value.toObject();
        const QString original = object.value(QStringLiteral("original")).toString();
        const QString quarantined = object.value(QStringLiteral("quarantined")).toString();
        // Only files inside the batch folder go back: a manifest cannot move anything else.
        if (original.isEmpty() || QDir::isRelativePath(original)
            || (batch.relabel && relativeInside(datasetRoot, cleanAbsolute(original)).isEmpty())
            || relativeInside(destinations, cleanAbsolute(quarantined)).isEmpty())
            return Error{QStringLiteral("The quarantine manifest %1 has an invalid entry.")
                             .arg(quoted(manifestPath))};
        batch.entries.append({original, quarantined});
    }
    if (batch.entries.isEmpty())
        return Error{
            QStringLiteral("The quarantine manifest %1 lists no files.").arg(quoted(manifestPath))};
    return batch;
}

} // namespace ifs
