// ifstudio-cli (and ifstudio's command line) as a user or a script runs them.
#include "testutil.h"

#include "base/filenames.h"
#include "base/version.h"
#include "dataset/sampledata.h"

#include <QBuffer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QScopeGuard>
#include <QStandardPaths>
#include <QSysInfo>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <unistd.h>

using namespace ifs;
using namespace ifs::test;

class TestCli : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void versionAndHelp_data();
    void versionAndHelp();
    void usageErrors_data();
    void usageErrors();
    void everyCommandIsListedWithItsHelp();
    void scanJsonMatchesTorchvision();
    void scanSummary();
    void scanRefusalExitsNonZero();
    void scanAllowEmpty();
    void unreadableFolderIsReportedNotFatal();
    void trainStopsWhenAWriteFails();
    void oneRunPerFolder();
    void transformRefusesWhatExceedsTheMemoryBound();
    void scanJsonEscapesUndecodableBytes();
    void scanJsonEscapesControlCharacters();
    void checkOpensUndecodableNames();
    void unreadableClassFolderIsRefusedByScanAndCheck();
    void checkReportsSymlinkLoops();
};

namespace {

/// A small Fashion-MNIST (train/ and val/, 10 classes of `perClass` images) in `scratch`.
QString trainingData(const QString &scratch, int perClass = 10)
{
    ifs::SampleDataOptions options;
    options.source = fashionMnistSource(scratch, perClass);
    options.limitPerClass = perClass;
    const auto exported = ifs::exportFashionMnist(scratch + QStringLiteral("/fmnist"), options);
    return exported ? exported->root : QString();
}

QStringList folderEntries(const QString &folder)
{
    return QDir(folder).entryList(QDir::Files | QDir::Hidden, QDir::Name);
}

QByteArray fileBytes(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

QByteArray pngBytes(QRgb colour)
{
    QImage image(16, 12, QImage::Format_RGB888);
    image.fill(colour);
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    image.save(&buffer, "PNG");
    return bytes;
}

/// Makes `dir` (and the folders listed) enterable by everyone, so that a run as "nobody" reaches
/// them.
bool openToOthers(const QString &dir)
{
    return QFile::setPermissions(dir,
                                 QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner
                                     | QFile::ReadOther | QFile::ExeOther);
}

/// Root reads every folder whatever its mode, so as root a command runs as "nobody" (setpriv):
/// permissions bite only then. The build tree may sit under a folder nobody cannot enter (CI
/// clones anywhere), so the executables (or the oracle script) run from copies in `scratch`;
/// the CLI links only system libraries, so the copies run. `program` is the CLI when empty.
ProcessResult runAsUser(const QString &scratch, const QStringList &args, QString program = {})
{
    if (program.isEmpty())
        program = cliPath();
    if (geteuid() != 0)
        return runProcess(program, args);
    const QString setpriv = QStandardPaths::findExecutable(QStringLiteral("setpriv"));
    if (setpriv.isEmpty())
        qFatal("setpriv (util-linux) is needed to drop root for this test");
    QStringList command;
    if (program == cliPath()) {
        // The front hands `check` over to ifstudio-cli-compute beside it: copy both.
        const QString dir = QFileInfo(program).absolutePath();
        for (const QString &name :
             {QStringLiteral("ifstudio-cli"), QStringLiteral("ifstudio-cli-compute")}) {
            const QString copy = scratch + u'/' + name;
            if (!QFileInfo::exists(copy)) {
                QFile::copy(dir + u'/' + name, copy);
                QFile::setPermissions(
                    copy, QFile::ReadOwner | QFile::ExeOwner | QFile::ReadOther | QFile::ExeOther);
            }
        }
        command = QStringList{scratch + QStringLiteral("/ifstudio-cli")} + args;
    } else {
        command = QStringList{program} + args;
    }
    return runProcess(setpriv,
                      QStringList{QStringLiteral("--reuid=65534"), QStringLiteral("--regid=65534"),
                                  QStringLiteral("--clear-groups"), QStringLiteral("--")}
                          + command);
}

/// Why permissions cannot be tested here, or an empty string when they can: as root they bite
/// only through setpriv, which needs util-linux and the right to change the user id (a user
/// namespace without "nobody" mapped has none).
QString whyPermissionsCannotBite()
{
    if (geteuid() != 0)
        return {};
    const QString setpriv = QStandardPaths::findExecutable(QStringLiteral("setpriv"));
    if (setpriv.isEmpty())
        return QStringLiteral("running as root without setpriv (util-linux)");
    const ProcessResult probe = runProcess(
        setpriv,
        {QStringLiteral("--reuid=65534"), QStringLiteral("--regid=65534"),
         QStringLiteral("--clear-groups"), QStringLiteral("--"), QStringLiteral("true")});
    if (probe.exitCode != 0)
        return QStringLiteral("running as root and setpriv cannot become \"nobody\": ")
            + QString::fromLocal8Bit(probe.err).trimmed();
    return {};
}

/// The oracle run as "nobody" too (see runAsUser()).
QJsonObject oracleAsUser(const QString &scratch, const QString &root)
{
    const QString script = scratch + QStringLiteral("/imagefolder_oracle.py");
    if (!QFileInfo::exists(script)) {
        QFile::copy(toolPath(QStringLiteral("imagefolder_oracle.py")), script);
        QFile::setPermissions(script, QFile::ReadOwner | QFile::ReadOther);
    }
    if (geteuid() != 0)
        return QJsonDocument::fromJson(runProcess(oraclePython(), {script, root}).out).object();
    return QJsonDocument::fromJson(runAsUser(scratch, {script, root}, oraclePython()).out).object();
}

} // namespace

void TestCli::versionAndHelp_data()
{
    QTest::addColumn<QString>("program");
    QTest::addColumn<QString>("argument");
    QTest::addColumn<QString>("expected");
    const QString version = QStringLiteral(IFS_VERSION);
    QTest::newRow("cli --version") << cliPath() << "--version" << version;
    QTest::newRow("cli --help") << cliPath() << "--help"
                                << "scan ROOT";
    QTest::newRow("cli scan --help") << cliPath() << "scan"
                                     << "--allow-empty";
    if (const QString gui = guiPath(); !gui.isEmpty()) {
        QTest::newRow("gui --version") << gui << "--version" << version;
        QTest::newRow("gui --help") << gui << "--help"
                                    << "--threads";
    }
}

void TestCli::versionAndHelp()
{
    QFETCH(QString, program);
    QFETCH(QString, argument);
    QFETCH(QString, expected);
    QStringList args{argument};
    if (argument == u"scan")
        args.append(QStringLiteral("--help"));
    const ProcessResult result = runProcess(program, args);
    QCOMPARE(result.exitCode, 0);
    QVERIFY2(QString::fromUtf8(result.out).contains(expected), result.out.constData());
}

void TestCli::usageErrors_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QString>("expected");
    QTest::newRow("no command") << QStringList{} << "Usage";
    QTest::newRow("unknown command")
        << QStringList{QStringLiteral("frobnicate")} << "unknown command “frobnicate”";
    QTest::newRow("bad threads") << QStringList{QStringLiteral("--threads"), QStringLiteral("x"),
                                                QStringLiteral("scan"), QStringLiteral(".")}
                                 << "--threads needs a positive number";
    QTest::newRow("scan without root") << QStringList{QStringLiteral("scan")} << "exactly one ROOT";
}

void TestCli::usageErrors()
{
    QFETCH(QStringList, args);
    QFETCH(QString, expected);
    const ProcessResult result = runCli(args);
    QCOMPARE(result.exitCode, 2);
    QVERIFY(!result.crashed);
    QVERIFY2(QString::fromUtf8(result.err).contains(expected), result.err.constData());
}

void TestCli::everyCommandIsListedWithItsHelp()
{
    // The commands the CLI itself names when it does not know one.
    const ProcessResult unknown = runCli({QStringLiteral("frobnicate")});
    const QString message = QString::fromUtf8(unknown.err);
    const qsizetype from = message.indexOf(u"Commands: ");
    QVERIFY2(from >= 0, unknown.err.constData());
    const qsizetype to = message.indexOf(u'.', from);
    const QStringList commands = message.mid(from + 10, to - from - 10).split(QStringLiteral(", "));
    QVERIFY2(commands.size() >= 10, qPrintable(commands.join(u' ')));

    const ProcessResult overview = runCli({QStringLiteral("--help")});
    QCOMPARE(overview.exitCode, 0);
    const QStringList lines = QString::fromUtf8(overview.out).split(u'\n');
    for (const QString &command : commands) {
        // Its own line in the overview.
        const qsizetype listed
            = std::count_if(lines.begin(), lines.end(), [&](const QString &line) {
                  return line.startsWith(u"  " + command + u' ');
              });
        QVERIFY2(listed == 1,
                 qPrintable(command + QStringLiteral(" is not on a line of its own:\n")
                            + QString::fromUtf8(overview.out)));
        // Its help names the command as the user types it, whichever executable answers.
        const ProcessResult help = runCli({command, QStringLiteral("--help")});
        QCOMPARE(help.exitCode, 0);
        QVERIFY2(QString::fromUtf8(help.out).startsWith(u"Usage: ifstudio-cli " + command + u' '),
                 help.out.left(200).constData());
        // A bad option: exit 2 and a pointer to that help, in one sentence.
        const ProcessResult bad = runCli({command, QStringLiteral("--no-such-option")});
        QCOMPARE(bad.exitCode, 2);
        const QString err = QString::fromUtf8(bad.err);
        QVERIFY2(err.contains(u"Try `ifstudio-cli " + command + u" --help`."), bad.err.constData());
        QVERIFY2(!err.contains(u".."), bad.err.constData());
    }
}

void TestCli::scanJsonMatchesTorchvision()
{
    QTemporaryDir tmp;
    const QString root = tmp.path();
    for (const QString &file :
         {QStringLiteral("dog/b.jpg"), QStringLiteral("dog/A.JPG"), QStringLiteral("cat/x/1.png"),
          QStringLiteral("cat/x y/1.png"), QStringLiteral("cat/0.webp"),
          QStringLiteral("Ünïcode/\"quoted\".bmp"), QStringLiteral("cat/skip.txt")})
        QVERIFY(writeFile(root + u'/' + file, "x"));

    const ProcessResult ours = runCli({QStringLiteral("scan"), root, QStringLiteral("--json")});
    QCOMPARE(ours.exitCode, 0);
    QJsonParseError error;
    const QJsonObject json = QJsonDocument::fromJson(ours.out, &error).object();
    QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString()));
    QCOMPARE(ours.out.count('\n'), 1); // exactly one object, one line

    const ProcessResult oracle = runOracle(QStringLiteral("imagefolder_oracle.py"), {root});
    const QJsonObject expected = QJsonDocument::fromJson(oracle.out).object();
    QVERIFY(expected.value(u"ok").toBool());
    QCOMPARE(json.value(u"root").toString(), QDir::cleanPath(root));
    QCOMPARE(json.value(u"classes"), expected.value(u"classes"));
    QCOMPARE(json.value(u"class_to_idx"), expected.value(u"class_to_idx"));
    QCOMPARE(json.value(u"samples"), expected.value(u"samples"));
}

void TestCli::scanSummary()
{
    QTemporaryDir tmp;
    for (int i = 0; i < 12; ++i)
        QVERIFY(writeFile(tmp.path() + QStringLiteral("/big/%1.jpg").arg(i), "x"));
    QVERIFY(writeFile(tmp.path() + QStringLiteral("/small/1.jpg"), "x"));
    QVERIFY(writeFile(tmp.path() + QStringLiteral("/.ipynb_checkpoints/1.jpg"), "x"));
    const ProcessResult result = runCli({QStringLiteral("scan"), tmp.path()});
    QCOMPARE(result.exitCode, 0);
    const QString out = QString::fromUtf8(result.out);
    QVERIFY2(out.contains(QStringLiteral("3 classes, 14 images")), qPrintable(out));
    QVERIFY2(out.contains(QStringLiteral("Hidden folder “.ipynb_checkpoints”")), qPrintable(out));
    QVERIFY2(out.contains(QStringLiteral("Strong class imbalance")), qPrintable(out));
}

void TestCli::scanRefusalExitsNonZero()
{
    QTemporaryDir tmp;
    QVERIFY(writeFile(tmp.path() + QStringLiteral("/cat/1.jpg"), "x"));
    QVERIFY(QDir().mkpath(tmp.path() + QStringLiteral("/dog")));
    const ProcessResult result
        = runCli({QStringLiteral("scan"), tmp.path(), QStringLiteral("--json")});
    QCOMPARE(result.exitCode, 1);
    QVERIFY(result.out.isEmpty());
    QVERIFY2(result.err.contains("“dog”") && result.err.contains("--allow-empty"),
             result.err.constData());

    const ProcessResult missing
        = runCli({QStringLiteral("scan"), tmp.path() + QStringLiteral("/no")});
    QCOMPARE(missing.exitCode, 1);
    QVERIFY2(missing.err.contains("does not exist"), missing.err.constData());

    // A split dataset scanned at its top: torchvision sees "train" and "val" as two classes;
    // we list that, as torchvision would, and point at the splits.
    QTemporaryDir splits;
    QVERIFY(writeFile(splits.path() + QStringLiteral("/train/cat/1.jpg"), "x"));
    QVERIFY(writeFile(splits.path() + QStringLiteral("/val/cat/1.jpg"), "x"));
    const ProcessResult split = runCli({QStringLiteral("scan"), splits.path()});
    QCOMPARE(split.exitCode, 0);
    QVERIFY2(split.out.contains("2 classes, 2 images"), split.out.constData());
    QVERIFY2(split.out.contains("holds the splits train, val"), split.out.constData());
}

void TestCli::scanAllowEmpty()
{
    QTemporaryDir tmp;
    QVERIFY(writeFile(tmp.path() + QStringLiteral("/cat/1.jpg"), "x"));
    QVERIFY(QDir().mkpath(tmp.path() + QStringLiteral("/dog")));
    const ProcessResult result
        = runCli({QStringLiteral("scan"), tmp.path(), QStringLiteral("--json"),
                  QStringLiteral("--allow-empty")});
    QCOMPARE(result.exitCode, 0);
    const QJsonObject json = QJsonDocument::fromJson(result.out).object();
    QCOMPARE(json.value(u"classes").toArray().size(), 2);
    QCOMPARE(json.value(u"samples").toArray().size(), 1);
}

void TestCli::unreadableFolderIsReportedNotFatal()
{
    // Root reads every folder whatever its mode, so as root the scan runs as "nobody".
    QTemporaryDir tmp;
    QVERIFY(QFile::setPermissions(tmp.path(),
                                  QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner
                                      | QFile::ReadOther | QFile::ExeOther));
    QVERIFY(writeFile(tmp.path() + QStringLiteral("/cat/1.jpg"), "x"));
    QVERIFY(writeFile(tmp.path() + QStringLiteral("/cat/locked/2.jpg"), "x"));
    QVERIFY(writeFile(tmp.path() + QStringLiteral("/dog/1.jpg"), "x"));
    for (const QString &dir : {QStringLiteral("/cat"), QStringLiteral("/dog")})
        QVERIFY(QFile::setPermissions(tmp.path() + dir,
                                      QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner
                                          | QFile::ReadOther | QFile::ExeOther));
    QVERIFY(QFile::setPermissions(tmp.path() + QStringLiteral("/cat/locked"), QFile::WriteOwner));

    QString program = cliPath();
    QStringList args{QStringLiteral("scan"), tmp.path()};
    if (geteuid() == 0) {
        const QString setpriv = QStandardPaths::findExecutable(QStringLiteral("setpriv"));
        QVERIFY2(!setpriv.isEmpty(), "setpriv (util-linux) is needed to drop root for this test");
        // The build tree may sit under a folder nobody cannot enter (CI clones anywhere): run a
        // copy from the test folder. The CLI links only system libraries, so the copy runs.
        const QString copy = tmp.path() + QStringLiteral("/ifstudio-cli");
        QVERIFY(QFile::copy(program, copy));
        QVERIFY(QFile::setPermissions(
            copy, QFile::ReadOwner | QFile::ExeOwner | QFile::ReadOther | QFile::ExeOther));
        args.prepend(copy);
        args = QStringList{QStringLiteral("--reuid=65534"), QStringLiteral("--regid=65534"),
                           QStringLiteral("--clear-groups"), QStringLiteral("--")}
            + args;
        program = setpriv;
    }
    const ProcessResult result = runProcess(program, args);
    QVERIFY2(result.exitCode == 0, result.err.constData());
    const QString out = QString::fromUtf8(result.out);
    QVERIFY2(out.contains(QStringLiteral("2 classes, 2 images")), qPrintable(out));
    QVERIFY2(out.contains(QStringLiteral("Cannot read the folder “cat/locked”")), qPrintable(out));
}

/// `ulimit -f` (prlimit) as a user sets it: the resumed run cannot write config.json. The
/// system refuses the write as a full disk does; the CLI neither dies of SIGXFSZ nor goes on: it
/// stops at once with the file, the reason and what to do, and config.json is as it was.
void TestCli::trainStopsWhenAWriteFails()
{
    const QString prlimit = QStandardPaths::findExecutable(QStringLiteral("prlimit"));
    if (prlimit.isEmpty())
        QSKIP("prlimit (util-linux) is not installed");
    QTemporaryDir tmp;
    const QString data = trainingData(tmp.path());
    QVERIFY(!data.isEmpty());
    const QString run = tmp.path() + QStringLiteral("/run");
    const QStringList train{QStringLiteral("train"),
                            QStringLiteral("--data"),
                            data,
                            QStringLiteral("--out"),
                            run,
                            QStringLiteral("--device"),
                            QStringLiteral("cpu"),
                            QStringLiteral("--workers"),
                            QStringLiteral("1")};
    const ProcessResult first
        = runCli(train + QStringList{QStringLiteral("--epochs"), QStringLiteral("1")});
    QVERIFY2(first.exitCode == 0, first.err.constData());
    const QByteArray config = fileBytes(run + QStringLiteral("/config.json"));
    QVERIFY(!config.isEmpty());
    const QStringList files = folderEntries(run);

    const ProcessResult full = runProcess(
        prlimit,
        QStringList{QStringLiteral("--fsize=256"), cliPath()} + train
            + QStringList{QStringLiteral("--resume"), run + QStringLiteral("/last.pth"),
                          QStringLiteral("--epochs"), QStringLiteral("2")});
    QVERIFY2(!full.crashed, full.err.constData());
    QCOMPARE(full.exitCode, 1);
    const QString err = QString::fromUtf8(full.err);
    QVERIFY2(err.contains(QStringLiteral("config.json")) && err.contains(qt_error_string(EFBIG))
                 && err.contains(QStringLiteral("resume from")),
             full.err.constData());
    QCOMPARE(fileBytes(run + QStringLiteral("/config.json")), config);
    QCOMPARE(folderEntries(run), files);
}

/// Two `train` processes on one --out: the second exits 1 at once, naming the first (process
/// id, host). The first killed with SIGKILL leaves its lock behind: the next run takes it over
/// (and says so) and removes the temporary files of ours an interrupted write left, not the
/// user's files.
void TestCli::oneRunPerFolder()
{
    QTemporaryDir tmp;
    const QString data = trainingData(tmp.path());
    QVERIFY(!data.isEmpty());
    const QString run = tmp.path() + QStringLiteral("/run");
    const QStringList train{QStringLiteral("train"),
                            QStringLiteral("--data"),
                            data,
                            QStringLiteral("--out"),
                            run,
                            QStringLiteral("--device"),
                            QStringLiteral("cpu"),
                            QStringLiteral("--workers"),
                            QStringLiteral("1")};
    QProcess first;
    first.start(cliPath(),
                train + QStringList{QStringLiteral("--epochs"), QStringLiteral("100000")});
    QVERIFY(first.waitForStarted());
    const qint64 pid = first.processId(); // ifstudio-cli execs ifstudio-cli-train: the same id
    // steps.csv comes after the lock: once it is there the first run holds the folder.
    QTRY_VERIFY_WITH_TIMEOUT(QFileInfo::exists(run + QStringLiteral("/steps.csv")), 120000);

    const ProcessResult second
        = runCli(train + QStringList{QStringLiteral("--epochs"), QStringLiteral("1")});
    QCOMPARE(second.exitCode, 1);
    const QString refusal = QString::fromUtf8(second.err);
    QVERIFY2(refusal.contains(QStringLiteral("is in use by another training run"))
                 && refusal.contains(QStringLiteral("process %1").arg(pid))
                 && refusal.contains(QSysInfo::machineHostName()),
             second.err.constData());
    QVERIFY2(!refusal.contains(QStringLiteral("Training small_cnn")), second.err.constData());

    first.kill(); // SIGKILL: no clean-up, the lock stays
    QVERIFY(first.waitForFinished());
    QVERIFY(QFileInfo::exists(run + QStringLiteral("/.ifstudio-run.lock")));
    // What a kill during a write leaves (QSaveFile's and our writer's names), and user files.
    for (const QString &name :
         {QStringLiteral("last.pth.QkRtYb"), QStringLiteral("config.json.Ab3xZ9.tmp"),
          QStringLiteral("last.pth.backup"), QStringLiteral("notes.txt")})
        QVERIFY(writeFile(run + u'/' + name, "x"));

    const ProcessResult third
        = runCli(train
                 + QStringList{QStringLiteral("--epochs"), QStringLiteral("1"),
                               QStringLiteral("--max-steps"), QStringLiteral("1")});
    QVERIFY2(third.exitCode == 0, third.err.constData());
    const QString notes = QString::fromUtf8(third.err);
    QVERIFY2(notes.contains(QStringLiteral("Took over the run folder's lock"))
                 && notes.contains(QStringLiteral("process %1").arg(pid))
                 && notes.contains(QStringLiteral("no longer running")),
             third.err.constData());
    QVERIFY2(notes.contains(QStringLiteral("Removed 2 temporary file(s)")), third.err.constData());
    const QStringList left = folderEntries(run);
    QVERIFY2(!left.contains(QStringLiteral("last.pth.QkRtYb"))
                 && !left.contains(QStringLiteral("config.json.Ab3xZ9.tmp"))
                 && left.contains(QStringLiteral("last.pth.backup"))
                 && left.contains(QStringLiteral("notes.txt"))
                 && !left.contains(QStringLiteral(".ifstudio-run.lock")),
             qPrintable(left.join(u' ')));
}

void TestCli::transformRefusesWhatExceedsTheMemoryBound()
{
    // The pipeline spent 54 s and 10.7 GB, then aborted with std::bad_alloc. Now it is
    // refused before the resize runs. The CLI runs with an 8 GiB address-space limit, so that
    // its bound (a quarter of what it may use) is 2 GiB on any machine.
    QTemporaryDir tmp;
    QImage image(64, 48, QImage::Format_RGB888);
    image.fill(Qt::darkGreen);
    const QString input = tmp.filePath(QStringLiteral("in.png"));
    QVERIFY(image.save(input));
    const QStringList args{
        QStringLiteral("transform"),
        input,
        QStringLiteral("--pipeline"),
        QStringLiteral("[transforms.Resize((60000, 60000)), transforms.ToTensor()]"),
        QStringLiteral("-o"),
        tmp.filePath(QStringLiteral("out.pt"))};
    const ProcessResult result = runProcess(
        QStringLiteral("/bin/sh"),
        QStringList{QStringLiteral("-c"), QStringLiteral("ulimit -v 8388608 && exec \"$0\" \"$@\""),
                    cliPath()}
            + args);
    QCOMPARE(result.exitCode, 1);
    QVERIFY2(result.err.contains("Step 1, Resize: its output, PIL Image RGB 60000 × 60000, would "
                                 "take 10.1 GiB, more than the 2 GiB one run may use here"),
             result.err.constData());
    QVERIFY(!QFile::exists(tmp.filePath(QStringLiteral("out.pt"))));
}

void TestCli::scanJsonEscapesUndecodableBytes()
{
    // Names that are not valid UTF-8 (legal on Linux). torchvision keeps them as str with lone
    // surrogates and json.dumps() writes those as "\udcXX": our samples must be that very text.
    QTemporaryDir tmp;
    const auto cleanup = qScopeGuard([&] { removeTree(tmp.path()); });
    const QString root = tmp.path();
    for (const char *name : {"a/\xff\xfe.jpg", "a/z.jpg", "a/\x80sub/1.png", "a/\xc3.png",
                             "\xff/x.png", "\xff\x80/y\xfe.webp", "b/\xed\xa0\x80.bmp"})
        QVERIFY(writeFile(root + u'/' + decodeFileName(name), "x"));

    const ProcessResult ours = runCli({QStringLiteral("scan"), root, QStringLiteral("--json")});
    QCOMPARE(ours.exitCode, 0);
    QVERIFY2(isValidUtf8(ours.out.toStdString()), "scan --json must print valid UTF-8");
    QJsonParseError error;
    const QJsonObject json = QJsonDocument::fromJson(ours.out, &error).object();
    QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString()));

    const ProcessResult oracle = runOracle(QStringLiteral("imagefolder_oracle.py"), {root});
    const QJsonObject expected = QJsonDocument::fromJson(oracle.out).object();
    QVERIFY2(expected.value(u"ok").toBool(), oracle.err.constData());
    QCOMPARE(json.value(u"classes"), expected.value(u"classes"));
    QCOMPARE(json.value(u"class_to_idx"), expected.value(u"class_to_idx"));
    QCOMPARE(json.value(u"samples"), expected.value(u"samples"));

    // Byte for byte: json.dumps(samples, separators=(",", ":")).
    const ProcessResult dumped = runOracle(QStringLiteral("imagefolder_oracle.py"),
                                           {root, QStringLiteral("--samples-json")});
    const qsizetype from = ours.out.indexOf("\"samples\":") + 10;
    const qsizetype to = ours.out.indexOf(",\"warnings\":", from);
    QVERIFY(from >= 10 && to > from);
    QCOMPARE(ours.out.mid(from, to - from), dumped.out.trimmed());
    QVERIFY(dumped.out.contains("\\udcff\\udcfe.jpg"));
}

void TestCli::checkOpensUndecodableNames()
{
    // Every file opens by its bytes: no false "No such file" for a name Qt cannot decode.
    QTemporaryDir tmp;
    const auto cleanup = qScopeGuard([&] { removeTree(tmp.path()); });
    const QString root = tmp.path();
    QVERIFY(writeFile(root + u'/' + decodeFileName("a/\xff\xfe.png"), pngBytes(qRgb(200, 10, 10))));
    QVERIFY(writeFile(root + u'/' + decodeFileName("a/\xc3.png"), pngBytes(qRgb(10, 200, 10))));
    QVERIFY(writeFile(root + u'/' + decodeFileName("\xff/x.png"), pngBytes(qRgb(10, 10, 200))));
    QVERIFY(writeFile(root + u'/' + decodeFileName("\xff/empty\x80.png"), QByteArray()));

    const ProcessResult run
        = runCli({QStringLiteral("check"), root, QStringLiteral("--json")}, 120000);
    QVERIFY2(run.exitCode == 1, run.err.constData()); // the empty file, and only it
    const QJsonObject report = QJsonDocument::fromJson(run.out).object();
    QCOMPARE(report.value(u"files_checked").toInt(), 4);
    const QJsonArray findings = report.value(u"findings").toArray();
    QCOMPARE(findings.size(), 1);
    QCOMPARE(findings[0][u"kind"].toString(), QStringLiteral("zero_byte"));
    // The path as scan --json (and json.dumps()) writes it.
    QCOMPARE(findings[0][u"path"].toString(), decodeFileName("\xff/empty\x80.png"));
    QVERIFY(run.out.contains("\"\\udcff/empty\\udc80.png\""));
    QVERIFY(report.value(u"accepted_by_torchvision").toBool());

    // Read as text, the names show U+FFFD where the bytes were.
    const ProcessResult human = runCli({QStringLiteral("check"), root});
    QVERIFY2(
        QString::fromUtf8(human.out).contains(QStringLiteral("“\uFFFD/empty\uFFFD.png” is empty")),
        human.out.constData());
}

void TestCli::unreadableClassFolderIsRefusedByScanAndCheck()
{
    // A class folder the user cannot read: torchvision's os.walk() skips it silently, finds no
    // image for the class and refuses the dataset. scan and check both say why, in the same words,
    // and exit 1. As root the commands run as "nobody" (runAsUser()), so the test really fails
    // where it should.
    if (const QString why = whyPermissionsCannotBite(); !why.isEmpty())
        QSKIP(qPrintable(why));
    QTemporaryDir tmp;
    const QString root = tmp.path() + QStringLiteral("/data");
    QVERIFY(openToOthers(tmp.path()));
    QVERIFY(writeFile(root + QStringLiteral("/a/1.png"), pngBytes(qRgb(200, 10, 10))));
    QVERIFY(writeFile(root + QStringLiteral("/b/2.png"), pngBytes(qRgb(10, 200, 10))));
    for (const QString &dir : {QString(), QStringLiteral("/a")})
        QVERIFY(openToOthers(root + dir));
    QVERIFY(QFile::setPermissions(root + QStringLiteral("/b"), QFile::WriteOwner));
    const auto restore = qScopeGuard([&] {
        QFile::setPermissions(root + QStringLiteral("/b"),
                              QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
    });

    const QJsonObject torchvision = oracleAsUser(tmp.path(), root);
    QVERIFY2(torchvision.contains(u"ok"), "the oracle did not run");
    QVERIFY2(!torchvision.value(u"ok").toBool(), "torchvision accepted an unreadable class");

    const ProcessResult scan = runAsUser(tmp.path(), {QStringLiteral("scan"), root});
    QCOMPARE(scan.exitCode, 1);
    const QString refusal = QString::fromUtf8(scan.err).trimmed();
    QVERIFY2(refusal.contains(QStringLiteral("Cannot read the class folder “b”"))
                 && refusal.contains(QString::fromLocal8Bit(std::strerror(EACCES))),
             qPrintable(refusal));
    QVERIFY2(!refusal.contains(QStringLiteral("No image in the class folder")),
             qPrintable(refusal));

    const ProcessResult check = runAsUser(tmp.path(), {QStringLiteral("check"), root});
    QCOMPARE(check.exitCode, 1);
    const QString out = QString::fromUtf8(check.out);
    QVERIFY2(QString::fromUtf8(check.err).contains(refusal), check.err.constData());
    QVERIFY2(out.contains(QStringLiteral("warning: Cannot read the folder “b”")), qPrintable(out));
    QVERIFY2(!out.contains(QStringLiteral("All images load")), qPrintable(out));

    const ProcessResult json
        = runAsUser(tmp.path(), {QStringLiteral("check"), root, QStringLiteral("--json")});
    QCOMPARE(json.exitCode, 1);
    const QJsonObject report = QJsonDocument::fromJson(json.out).object();
    QCOMPARE(report.value(u"accepted_by_torchvision").toBool(true), false);
    QStringList kinds;
    for (const QJsonValue &warning : report.value(u"dataset_warnings").toArray())
        kinds.append(warning[u"kind"].toString());
    QVERIFY2(kinds.contains(u"refused") && kinds.contains(u"unreadable_folder"),
             qPrintable(kinds.join(u' ')));
}

void TestCli::scanJsonEscapesControlCharacters()
{
    // Quotes, backslashes and control characters (DEL included) are legal in Linux file names:
    // the samples must still be json.dumps()'s very text (the fast writer of `scan --json`).
    QTemporaryDir tmp;
    const auto cleanup = qScopeGuard([&] { removeTree(tmp.path()); });
    const QString root = tmp.path();
    for (const char *name : {"a/q\"uote.jpg", "a/back\\slash.jpg", "a/new\nline.jpg", "a/tab\t.jpg",
                             "a/\x01\x1f\x7f.png", "a/\b\f\r.png", "b\\c/\xff\".png"})
        QVERIFY(writeFile(root + u'/' + decodeFileName(name), "x"));

    const ProcessResult ours = runCli({QStringLiteral("scan"), root, QStringLiteral("--json")});
    QCOMPARE(ours.exitCode, 0);
    QJsonParseError error;
    const QJsonObject json = QJsonDocument::fromJson(ours.out, &error).object();
    QVERIFY2(error.error == QJsonParseError::NoError, qPrintable(error.errorString()));
    const ProcessResult oracle = runOracle(QStringLiteral("imagefolder_oracle.py"), {root});
    const QJsonObject expected = QJsonDocument::fromJson(oracle.out).object();
    QVERIFY2(expected.value(u"ok").toBool(), oracle.err.constData());
    QCOMPARE(json.value(u"samples").toArray().size(), 7);
    QCOMPARE(json.value(u"samples"), expected.value(u"samples"));

    const ProcessResult dumped = runOracle(QStringLiteral("imagefolder_oracle.py"),
                                           {root, QStringLiteral("--samples-json")});
    const qsizetype from = ours.out.indexOf("\"samples\":") + 10;
    const qsizetype to = ours.out.indexOf(",\"warnings\":", from);
    QVERIFY(from >= 10 && to > from);
    QCOMPARE(ours.out.mid(from, to - from), dumped.out.trimmed());
}

void TestCli::checkReportsSymlinkLoops()
{
    QTemporaryDir tmp;
    const QString root = tmp.path();
    QVERIFY(writeFile(root + QStringLiteral("/cat/1.png"), pngBytes(qRgb(200, 10, 10))));
    QVERIFY(writeFile(root + QStringLiteral("/cat/sub/2.png"), pngBytes(qRgb(10, 200, 10))));
    QVERIFY(writeFile(root + QStringLiteral("/dog/1.png"), pngBytes(qRgb(10, 10, 200))));
    QVERIFY(QFile::link(root + QStringLiteral("/cat"), root + QStringLiteral("/cat/sub/up")));

    const ProcessResult scan = runCli({QStringLiteral("scan"), root});
    QCOMPARE(scan.exitCode, 0);
    const QString loop = QStringLiteral("warning: The symlink “cat/sub/up” leads back");
    QVERIFY2(QString::fromUtf8(scan.out).contains(loop), scan.out.constData());

    // check says it with the same words; torchvision does not raise, so neither do we.
    const ProcessResult check = runCli({QStringLiteral("check"), root});
    QCOMPARE(check.exitCode, 0);
    QString scanLine;
    for (const QString &line : QString::fromUtf8(scan.out).split(u'\n')) {
        if (line.startsWith(loop))
            scanLine = line;
    }
    QVERIFY2(QString::fromUtf8(check.out).contains(scanLine), check.out.constData());

    const ProcessResult json = runCli({QStringLiteral("check"), root, QStringLiteral("--json")});
    QCOMPARE(json.exitCode, 0);
    const QJsonObject report = QJsonDocument::fromJson(json.out).object();
    QVERIFY(report.value(u"accepted_by_torchvision").toBool());
    const QJsonArray warnings = report.value(u"dataset_warnings").toArray();
    QCOMPARE(warnings.size(), 1);
    QCOMPARE(warnings[0][u"kind"].toString(), QStringLiteral("symlink_loop"));
    QCOMPARE(warnings[0][u"message"].toString(), scanLine.mid(9));
}

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
