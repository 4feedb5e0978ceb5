// The files of a run folder: replaced whole or not at all, grown by whole rows, and left as they
// were when the disk refuses a write (a real refusal: a file size limit on this process, which
// the system enforces as it does a full disk).
#include "testutil.h"

#include "base/atomicfile.h"
#include "training/runfolder.h"
#include "training/training.h"

#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLockFile>
#include <QProcess>
#include <QSysInfo>
#include <QTemporaryDir>
#include <QTest>

#include <cerrno>

using namespace ifs;
using namespace ifs::test;

namespace {

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray("<unreadable>");
}

QStringList entries(const QString &folder)
{
    return QDir(folder).entryList(QDir::Files | QDir::Hidden, QDir::Name);
}

} // namespace

class TestRunFolder : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void atomicWriteReplacesTheFile()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("config.json"));
        QVERIFY(writeFileAtomically(path, "first\n"));
        QCOMPARE(readAll(path), QByteArray("first\n"));
        QVERIFY(QFile::setPermissions(path, QFile::ReadOwner | QFile::WriteOwner));
        QVERIFY(writeFileAtomically(path, "second\n"));
        QCOMPARE(readAll(path), QByteArray("second\n"));
        // The file keeps its permissions (not the 0644 a new file gets).
        const QFile::Permissions mask
            = QFile::ReadOwner | QFile::WriteOwner | QFile::ReadGroup | QFile::ReadOther;
        QCOMPARE(QFile::permissions(path) & mask, QFile::ReadOwner | QFile::WriteOwner);
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("config.json")});
    }

    /// The disk refuses the write: the error names the file and the system's reason, the
    /// previous file is untouched and no temporary file stays behind.
    void refusedWriteKeepsThePreviousFile()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("config.json"));
        QVERIFY(writeFileAtomically(path, "{\"lr\": 0.1}\n"));
        Status status = success();
        {
            const FileSizeLimit full(64);
            QVERIFY(full.isActive());
            status = writeFileAtomically(path, QByteArray(4096, 'x'));
        }
        QVERIFY(!status);
        QCOMPARE(status.error().code, ErrorCode::Io);
        QVERIFY2(status.errorMessage().contains(QDir::toNativeSeparators(path)),
                 qPrintable(status.errorMessage()));
        QVERIFY2(status.errorMessage().contains(qt_error_string(EFBIG)),
                 qPrintable(status.errorMessage()));
        QCOMPARE(readAll(path), QByteArray("{\"lr\": 0.1}\n"));
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("config.json")});
        // A new file that cannot be written is not created at all.
        {
            const FileSizeLimit full(64);
            status = writeFileAtomically(dir.filePath(QStringLiteral("metrics.csv")),
                                         QByteArray(4096, 'x'));
        }
        QVERIFY(!status);
        QCOMPARE(entries(dir.path()), QStringList{QStringLiteral("config.json")});
    }

    /// A row that does not fit is cut off again: the file ends with its last complete row, and
    /// the next append (once there is room) continues from there.
    void refusedAppendLeavesWholeRows()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("steps.csv"));
        QVERIFY(writeFileAtomically(path, "step,epoch,loss,lr\n"));
        AppendFile file;
        QVERIFY(file.open(path));
        const QByteArray row("1,1,2.30258512,0.1\n");
        QByteArray expected("step,epoch,loss,lr\n");
        Status status = success();
        {
            const FileSizeLimit full(100);
            while ((status = file.append(row)))
                expected += row;
        }
        QVERIFY(!status);
        QVERIFY2(status.errorMessage().contains(u"steps.csv")
                     && status.errorMessage().contains(qt_error_string(EFBIG)),
                 qPrintable(status.errorMessage()));
        QVERIFY(expected.size() <= 100 && expected.size() + row.size() > 100);
        QCOMPARE(readAll(path), expected);
        QVERIFY(file.append(row));
        QVERIFY(file.sync());
        QCOMPARE(readAll(path), expected + row);
    }

    /// A row cut short (the power went while it was written) is not read as a record.
    void historyIgnoresARowCutShort()
    {
        QTemporaryDir dir;
        QVERIFY(writeFile(dir.filePath(QStringLiteral("metrics.csv")),
                          "epoch,step,train_loss,train_acc,val_loss,val_acc,lr,seconds,"
                          "images_per_s\n1,12,2.1,30.0,2.0,35.0,0.1,1.5,300.0\n"));
        QVERIFY(writeFile(dir.filePath(QStringLiteral("steps.csv")),
                          "step,epoch,loss,lr\n1,1,2.3,0.1\n2,1,2.2,0.1\n3,1,2."));
        const Result<RunHistory> history = readRunHistory(dir.path());
        QVERIFY2(history, qPrintable(history.errorMessage()));
        QCOMPARE(history->epochs.size(), 1);
        QCOMPARE(history->steps.size(), 2);
        QCOMPARE(history->steps.back().loss, 2.2);
    }

    /// One run at a time: a second lock on the folder is refused with a message that names
    /// the holder (program, process id, host); once released, the folder is free again.
    void lockRefusesASecondRun()
    {
        QTemporaryDir dir;
        RunFolderLock first;
        QVERIFY(first.acquire(dir.path()));
        QVERIFY(first.isLocked());
        QVERIFY(first.takeOverNote().isEmpty());
        QVERIFY(QFileInfo::exists(dir.filePath(RunFolderLock::fileName())));

        RunFolderLock second;
        const Status refused = second.acquire(dir.path());
        QVERIFY(!refused);
        QVERIFY(!second.isLocked());
        const QString message = refused.errorMessage();
        QVERIFY2(message.contains(u"is in use by another training run")
                     && message.contains(
                         QStringLiteral("process %1").arg(QCoreApplication::applicationPid()))
                     && message.contains(QSysInfo::machineHostName())
                     && message.contains(QCoreApplication::applicationName()),
                 qPrintable(message));

        first.release();
        QVERIFY(!QFileInfo::exists(dir.filePath(RunFolderLock::fileName())));
        QVERIFY(second.acquire(dir.path()));
        QVERIFY(second.takeOverNote().isEmpty()); // released properly: nothing to take over
    }

    /// A lock whose process is gone (as a kill -9 leaves it) is taken over, with a note.
    void staleLockIsTakenOver()
    {
        // A process id that no longer runs: a child that has ended and been reaped.
        QProcess child;
        child.start(QStringLiteral("true"), QStringList{});
        QVERIFY(child.waitForStarted());
        const qint64 deadPid = child.processId();
        QVERIFY(child.waitForFinished());
        // The lock file as QLockFile writes it, with that process as the holder.
        QTemporaryDir scratch;
        QLockFile model(scratch.filePath(QStringLiteral("model.lock")));
        QVERIFY(model.tryLock(0));
        QFile modelFile(scratch.filePath(QStringLiteral("model.lock")));
        QVERIFY(modelFile.open(QIODevice::ReadOnly));
        QList<QByteArray> lines = modelFile.readAll().split('\n');
        lines[0] = QByteArray::number(deadPid);
        QTemporaryDir dir;
        QVERIFY(writeFile(dir.filePath(RunFolderLock::fileName()), lines.join('\n')));

        RunFolderLock lock;
        const Status taken = lock.acquire(dir.path());
        QVERIFY2(taken, qPrintable(taken.errorMessage()));
        QVERIFY2(lock.takeOverNote().contains(QStringLiteral("process %1").arg(deadPid))
                     && lock.takeOverNote().contains(u"no longer running"),
                 qPrintable(lock.takeOverNote()));
        // It is ours now: another run is refused.
        RunFolderLock other;
        QVERIFY(!other.acquire(dir.path()));
    }

    /// The temporaries of our writers go (QSaveFile's, the checkpoint writer's, ours); files
    /// that only look alike, and everything else, stay.
    void staleTemporariesOfOursAreRemoved()
    {
        QTemporaryDir dir;
        const QStringList ours{
            QStringLiteral("last.pth.QkRtYb"),        QStringLiteral("best.pth.aBcDeF"),
            QStringLiteral("epoch_003.pth.xYzWvU"),   QStringLiteral("last.pth.part-1k2j3h4g5f"),
            QStringLiteral("config.json.Ab3xZ9.tmp"), QStringLiteral("steps.csv.000aaa.tmp"),
            QStringLiteral("metrics.csv.Q1w2E3.tmp"), QStringLiteral("load_model.py.zzzzzz.tmp")};
        const QStringList theirs{QStringLiteral("last.pth"),
                                 QStringLiteral("last.pth.backup"),
                                 QStringLiteral("last.pth.Backup"),
                                 QStringLiteral("best.pth.OLDEST"),
                                 QStringLiteral("last.pth.AbCdEfG"),
                                 QStringLiteral("notes.txt.AbCdEf"),
                                 QStringLiteral("mine.pth.QkRtYb"),
                                 QStringLiteral("config.json.tmp"),
                                 QStringLiteral("data.csv.Ab3xZ9.tmp"),
                                 QStringLiteral("steps.csv")};
        for (const QString &name : ours + theirs)
            QVERIFY(writeFile(dir.filePath(name), "x"));
        QVERIFY(QDir(dir.path()).mkdir(QStringLiteral("last.pth.DiReCt")));

        QStringList removed = removeStaleTemporaries(dir.path());
        removed.sort();
        QStringList expected = ours;
        expected.sort();
        QCOMPARE(removed, expected);
        QStringList left = theirs;
        left.sort();
        QCOMPARE(entries(dir.path()), left);
        QVERIFY(QFileInfo(dir.filePath(QStringLiteral("last.pth.DiReCt"))).isDir());
    }
};

QTEST_GUILESS_MAIN(TestRunFolder)
#include "tst_runfolder.moc"
