// The GUI as a user drives it (offscreen): open a dataset by argument, by drop and from the
// recent list; the views fill in; split mismatches are loud; errors are explained.
#include "common/warningbanner.h"
#include "common/workspacebar.h"
#include "dataset/sampledata.h"
#include "datasets/classtablemodel.h"
#include "datasets/datasetsworkspace.h"
#include "datasets/imagedetailspanel.h"
#include "datasets/thumbnailmodel.h"
#include "datasets/thumbnailview.h"
#include "mainwindow.h"
#include "testutil.h"
#include "training/trainingworkspace.h"

#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QHeaderView>
#include <QImage>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QProxyStyle>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStackedWidget>
#include <QStandardPaths>
#include <QStatusBar>
#include <QStyleFactory>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QToolButton>
#include <QUrl>

using namespace ifs;
using namespace ifs::test;

namespace {

void writeImage(const QString &path, QColor color, QSize size = QSize(40, 30))
{
    QDir().mkpath(QFileInfo(path).absolutePath());
    QImage image(size, QImage::Format_RGB888);
    image.fill(color);
    QVERIFY(image.save(path));
}

/// Drops `path` on the window as a file manager would.
bool dropPath(QWidget *window, const QString &path)
{
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(path)});
    const QPoint pos = window->rect().center();
    QDragEnterEvent enter(pos, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(window, &enter);
    if (!enter.isAccepted())
        return false;
    QDropEvent drop(pos, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(window, &drop);
    return drop.isAccepted();
}

/// Closes the next modal message box and returns its text through `text`.
void closeNextMessageBox(QString *text)
{
    QTimer::singleShot(200, [text] {
        if (auto *box = qobject_cast<QMessageBox *>(QApplication::activeModalWidget())) {
            *text = box->text();
            box->accept();
        }
    });
}

/// Records the labels the style draws: what a user reads, ellipses included.
class RecordingStyle : public QProxyStyle
{
public:
    using QProxyStyle::QProxyStyle;

    void drawItemText(QPainter *painter, const QRect &rect, int flags, const QPalette &palette,
                      bool enabled, const QString &text,
                      QPalette::ColorRole textRole) const override
    {
        drawn.append(text);
        QProxyStyle::drawItemText(painter, rect, flags, palette, enabled, text, textRole);
    }

    mutable QStringList drawn;
};

} // namespace

class TestMainWindow : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void startsWithEmptyState();
    void opensRealSampleDataset();
    void splitMismatchIsLoud();
    void imbalanceFindingOffersBalancedTraining();
    void dragAndDropOpensFolder();
    void dropOfFileIsRefusedPolitely();
    void missingFolderExplains();
    void recentDatasetsPersist();
    void workspaceButtonSizeIgnoresCurrent();
    void workspaceLabelsAreNeverElided();
    void classNamesFitTheSmallestWindow();

private:
    QTemporaryDir m_tmp;
};

void TestMainWindow::initTestCase()
{
    QStandardPaths::setTestModeEnabled(true); // settings go to a test location
    QCoreApplication::setOrganizationName(QStringLiteral("ImageFolderStudioTests"));
    QCoreApplication::setApplicationName(QStringLiteral("tst_mainwindow"));
    QSettings().clear();
    QVERIFY(m_tmp.isValid());
}

void TestMainWindow::startsWithEmptyState()
{
    MainWindow window;
    window.show();
    auto *pages = window.findChild<QStackedWidget *>();
    QVERIFY(pages);
    QVERIFY(window.findChild<QWidget *>(QStringLiteral("emptyPage"))->isVisible());
    QVERIFY(window.findChild<QWidget *>(QStringLiteral("openSampleButton")));
    QVERIFY(!window.datasets()->hasDataset());
    QVERIFY(window.acceptDrops());
}

void TestMainWindow::opensRealSampleDataset()
{
    // Real data: Fashion-MNIST from Debian's package, 30 images per class and split.
    const QString dest = m_tmp.path() + QStringLiteral("/fashion");
    SampleDataOptions options;
    options.source = test::fashionMnistSource(m_tmp.path());
    options.limitPerClass = 30;
    const Result<SampleDataResult> exported = exportFashionMnist(dest, options);
    QVERIFY2(exported.ok(), qPrintable(exported.errorMessage()));

    MainWindow window;
    window.resize(1280, 800);
    window.show();
    DatasetsWorkspace *datasets = window.datasets();
    QSignalSpy finished(datasets, &DatasetsWorkspace::scanFinished);
    window.openDataset(dest);
    QVERIFY(finished.wait(20000));

    QCOMPARE(datasets->scan().splits,
             (QStringList{QStringLiteral("train"), QStringLiteral("val")}));
    QVERIFY(datasets->scan().mismatches.isEmpty());
    QVERIFY(!datasets->banner()->isVisible());
    QCOMPARE(datasets->currentSplit(), QStringLiteral("train"));

    ClassTableModel *classes = datasets->classModel();
    QCOMPARE(classes->rowCount(), 10);
    QStringList expected = fashionMnistFolderNames();
    std::sort(expected.begin(), expected.end()); // ImageFolder sorts; the labels' order is lost
    QCOMPARE(classes->classes(), expected);
    QCOMPARE(classes->total(), 300);
    QCOMPARE(datasets->thumbnailModel()->rowCount(), 300);

    // Selecting a class in the table shows its images only.
    QTableView *table = datasets->classTable();
    table->selectRow(3);
    QCOMPARE(datasets->selectedClass(),
             table->model()->index(3, 0).data(ClassTableModel::ClassIndexRole).toInt());
    QCOMPARE(datasets->thumbnailModel()->rowCount(), 30);

    // Thumbnails arrive (decoded off the GUI thread) and the first image's details show.
    QSignalSpy thumbs(datasets->thumbnailModel(), &QAbstractItemModel::dataChanged);
    QVERIFY(thumbs.wait(10000));
    datasets->thumbnailView()->setCurrentIndex(datasets->thumbnailModel()->index(0, 0));
    QTRY_VERIFY_WITH_TIMEOUT(datasets->detailsPanel()
                                 ->findChild<QLabel *>(QStringLiteral("sizeValue"))
                                 ->text()
                                 .contains(QStringLiteral("28")),
                             10000);

    // Switching to the val split shows its classes and counts.
    datasets->setCurrentSplit(QStringLiteral("val"));
    QCOMPARE(datasets->currentSplit(), QStringLiteral("val"));
    QCOMPARE(classes->total(), 300);
    QCOMPARE(datasets->selectedClass(), -1);

    // Clean data: the findings list says torchvision accepts it.
    QCOMPARE(datasets->warningList()->count(), 1);
    QCOMPARE(datasets->warningList()->item(0)->data(Qt::UserRole).toInt(), -1);
}

void TestMainWindow::splitMismatchIsLoud()
{
    const QString root = m_tmp.path() + QStringLiteral("/mismatch");
    writeImage(root + QStringLiteral("/train/cat/1.png"), Qt::red);
    writeImage(root + QStringLiteral("/train/dog/1.png"), Qt::green);
    writeImage(root + QStringLiteral("/train/emu/1.png"), Qt::blue);
    writeImage(root + QStringLiteral("/val/cat/1.png"), Qt::red);
    writeImage(root + QStringLiteral("/val/emu/1.png"), Qt::blue);

    MainWindow window;
    window.show();
    QSignalSpy finished(window.datasets(), &DatasetsWorkspace::scanFinished);
    window.openDataset(root);
    QVERIFY(finished.wait(20000));
    WarningBanner *banner = window.datasets()->banner();
    QVERIFY(banner->isVisible());
    QCOMPARE(banner->level(), WarningBanner::Level::Error);
    QVERIFY2(banner->text().contains(QStringLiteral("“dog” only in train")),
             qPrintable(banner->text()));
    QVERIFY(banner->text().contains(QStringLiteral("“emu” with different indices")));
    QVERIFY(
        window.datasets()->warningList()->item(0)->text().contains(QStringLiteral("do not agree")));
}

/// A strong imbalance is a finding whose remedy opens the Training workspace with balanced
/// class weights.
void TestMainWindow::imbalanceFindingOffersBalancedTraining()
{
    const QString root = m_tmp.path() + QStringLiteral("/imbalanced");
    for (int i = 0; i < 12; ++i)
        writeImage(root + QStringLiteral("/many/%1.png").arg(i), Qt::red);
    writeImage(root + QStringLiteral("/rare/1.png"), Qt::blue);

    MainWindow window;
    window.show();
    QSignalSpy finished(window.datasets(), &DatasetsWorkspace::scanFinished);
    window.openDataset(root);
    QVERIFY(finished.wait(20000));
    auto *remedy
        = window.datasets()->findChild<QPushButton *>(QStringLiteral("trainBalancedButton"));
    QVERIFY(remedy);
    QVERIFY(remedy->isVisible());
    auto *weighting
        = window.training()->findChild<QComboBox *>(QStringLiteral("classWeightingCombo"));
    QVERIFY(weighting);
    QCOMPARE(window.training()->config().classWeighting, ClassWeighting::None);
    remedy->click();
    QVERIFY(window.training()->isVisible());
    QCOMPARE(window.training()->config().classWeighting, ClassWeighting::InverseFrequency);
    QCOMPARE(weighting->currentText(), QStringLiteral("Balanced"));
}

void TestMainWindow::dragAndDropOpensFolder()
{
    const QString root = m_tmp.path() + QStringLiteral("/dropped");
    writeImage(root + QStringLiteral("/a/1.png"), Qt::red);
    writeImage(root + QStringLiteral("/a/2.png"), Qt::red);
    writeImage(root + QStringLiteral("/b/1.jpg"), Qt::blue);
    writeImage(root + QStringLiteral("/.ipynb_checkpoints/x.png"), Qt::gray);

    MainWindow window;
    window.show();
    QSignalSpy finished(window.datasets(), &DatasetsWorkspace::scanFinished);
    QVERIFY(dropPath(&window, root));
    QVERIFY(finished.wait(20000));
    QCOMPARE(window.datasets()->datasetRoot(), QDir::cleanPath(root));
    QCOMPARE(window.datasets()->classModel()->classes(),
             (QStringList{QStringLiteral(".ipynb_checkpoints"), QStringLiteral("a"),
                          QStringLiteral("b")}));
    QCOMPARE(window.datasets()->thumbnailModel()->rowCount(), 4);
    // The hidden class is flagged in the findings and in the table.
    bool flagged = false;
    for (int i = 0; i < window.datasets()->warningList()->count(); ++i)
        flagged |= window.datasets()->warningList()->item(i)->text().contains(
            QStringLiteral(".ipynb_checkpoints"));
    QVERIFY(flagged);
    QVERIFY(!window.datasets()
                 ->classModel()
                 ->index(0, 1)
                 .data(ClassTableModel::WarningRole)
                 .toString()
                 .isEmpty());
    QVERIFY(window.windowTitle().contains(QStringLiteral("dropped")));
}

void TestMainWindow::dropOfFileIsRefusedPolitely()
{
    const QString file = m_tmp.path() + QStringLiteral("/lonely.png");
    writeImage(file, Qt::red);
    MainWindow window;
    window.show();
    QVERIFY(!dropPath(&window, file));
    QVERIFY(!window.datasets()->hasDataset());
    QVERIFY2(
        window.statusBar()->currentMessage().contains(QStringLiteral("drop the dataset's folder")),
        qPrintable(window.statusBar()->currentMessage()));
}

void TestMainWindow::missingFolderExplains()
{
    MainWindow window;
    window.show();
    QString text;
    closeNextMessageBox(&text);
    window.openDataset(m_tmp.path() + QStringLiteral("/does-not-exist"));
    QTRY_VERIFY_WITH_TIMEOUT(!text.isEmpty(), 5000);
    QVERIFY2(text.contains(QStringLiteral("does not exist")), qPrintable(text));
    QVERIFY(!window.datasets()->hasDataset());
}

void TestMainWindow::recentDatasetsPersist()
{
    const QString root = m_tmp.path() + QStringLiteral("/recent");
    writeImage(root + QStringLiteral("/a/1.png"), Qt::red);
    {
        MainWindow window;
        window.show();
        QSignalSpy finished(window.datasets(), &DatasetsWorkspace::scanFinished);
        window.openDataset(root);
        QVERIFY(finished.wait(20000));
        window.close();
    }
    MainWindow again;
    again.show();
    auto *recent = again.findChild<QListWidget *>(QStringLiteral("recentList"));
    QVERIFY(recent);
    QVERIFY(recent->count() >= 1);
    QCOMPARE(recent->item(0)->data(Qt::UserRole).toString(), QDir::cleanPath(root));
    // Activating it opens the dataset again.
    QSignalSpy finished(again.datasets(), &DatasetsWorkspace::scanFinished);
    Q_EMIT recent->itemActivated(recent->item(0));
    QVERIFY(finished.wait(20000));
    QCOMPARE(again.datasets()->datasetRoot(), QDir::cleanPath(root));
}

void TestMainWindow::workspaceButtonSizeIgnoresCurrent()
{
    // The current workspace's button is marked by a border; asking for its size while it is the
    // current one or not must give the same answer: a tool button keeps the first it computes.
    WorkspaceBar current;
    current.addWorkspace(QIcon(), QStringLiteral("Checkpoints"), QString()); // current: the first
    WorkspaceBar other;
    other.addWorkspace(QIcon(), QStringLiteral("Datasets"), QString());
    other.addWorkspace(QIcon(), QStringLiteral("Checkpoints"), QString());
    auto buttonOf = [](WorkspaceBar &bar, const QString &text) -> QToolButton * {
        for (QToolButton *button : bar.findChildren<QToolButton *>())
            if (button->text() == text)
                return button;
        return nullptr;
    };
    QToolButton *checked = buttonOf(current, QStringLiteral("Checkpoints"));
    QToolButton *unchecked = buttonOf(other, QStringLiteral("Checkpoints"));
    QVERIFY(checked && unchecked);
    QVERIFY(checked->isChecked() && !unchecked->isChecked());
    QCOMPARE(checked->sizeHint(), unchecked->sizeHint());
}

void TestMainWindow::workspaceLabelsAreNeverElided()
{
    // What the style draws on every workspace button, whichever workspace is current, in the
    // smallest window the app allows and in a large one.
    const QString styleName = QApplication::style()->name();
    auto *style = new RecordingStyle(QStyleFactory::create(styleName));
    QApplication::setStyle(style); // the application owns it
    {
        MainWindow window;
        auto *bar = window.findChild<WorkspaceBar *>();
        QVERIFY(bar);
        const QList<QToolButton *> buttons = bar->findChildren<QToolButton *>();
        QCOMPARE(buttons.size(), bar->count());
        for (const QSize size : {window.minimumSize(), QSize(2400, 1400)}) {
            window.resize(size);
            window.show();
            QVERIFY(QTest::qWaitForWindowExposed(&window));
            QCOMPARE(window.size(), size);
            for (int index = 0; index < bar->count(); ++index) {
                bar->setCurrentIndex(index);
                for (QToolButton *button : buttons) {
                    QVERIFY2(button->width() >= button->sizeHint().width(),
                             qPrintable(button->text() + u' ' + QString::number(button->width())
                                        + u'<' + QString::number(button->sizeHint().width())));
                    style->drawn.clear();
                    button->grab();
                    QVERIFY2(style->drawn.contains(button->text()),
                             qPrintable(button->text() + QStringLiteral(" drawn as ")
                                        + style->drawn.join(QStringLiteral(", "))));
                }
            }
        }
    }
    QApplication::setStyle(QStyleFactory::create(styleName));
}

void TestMainWindow::classNamesFitTheSmallestWindow()
{
    // Fashion-MNIST's class names whole in the class table of the smallest window: the numeric
    // columns take what their numbers and labels need, the names the rest.
    const QString dest = m_tmp.path() + QStringLiteral("/fashion-small");
    SampleDataOptions options;
    options.limitPerClass = 5;
    const Result<SampleDataResult> exported = exportFashionMnist(dest, options);
    QVERIFY2(exported.ok(), qPrintable(exported.errorMessage()));

    MainWindow window;
    window.resize(window.minimumSize());
    window.show();
    QVERIFY(QTest::qWaitForWindowExposed(&window));
    DatasetsWorkspace *datasets = window.datasets();
    QSignalSpy finished(datasets, &DatasetsWorkspace::scanFinished);
    window.openDataset(dest);
    QVERIFY(finished.wait(20000));
    QCOMPARE(window.size(), window.minimumSize());

    QTableView *table = datasets->classTable();
    QHeaderView *header = table->horizontalHeader();
    QCOMPARE(header->sectionResizeMode(ClassTableModel::NameColumn), QHeaderView::Stretch);
    // Room for the sort arrow only in the sorted column (Index), unlike a plain header.
    QHeaderView plain(Qt::Horizontal);
    plain.setModel(table->model());
    plain.setSortIndicatorShown(true);
    plain.setSortIndicator(header->sortIndicatorSection(), header->sortIndicatorOrder());
    int numbers = 0;
    for (int column : {ClassTableModel::IndexColumn, ClassTableModel::CountColumn,
                       ClassTableModel::ShareColumn}) {
        QCOMPARE(header->sectionResizeMode(column), QHeaderView::ResizeToContents);
        if (column == header->sortIndicatorSection())
            QCOMPARE(header->sectionSizeHint(column), plain.sectionSizeHint(column));
        else
            QVERIFY(header->sectionSizeHint(column) < plain.sectionSizeHint(column));
        numbers += header->sectionSize(column);
    }
    QCOMPARE(header->sectionSize(ClassTableModel::NameColumn),
             table->viewport()->width() - numbers);
    // The item view draws a cell's text inside a margin on both sides.
    const int margin
        = 2 * (table->style()->pixelMetric(QStyle::PM_FocusFrameHMargin, nullptr, table) + 1);
    for (int row = 0; row < table->model()->rowCount(); ++row) {
        const QString name
            = table->model()->index(row, ClassTableModel::NameColumn).data().toString();
        QVERIFY2(table->fontMetrics().horizontalAdvance(name) + margin
                     <= table->columnWidth(ClassTableModel::NameColumn),
                 qPrintable(name + QStringLiteral(" in ")
                            + QString::number(table->columnWidth(ClassTableModel::NameColumn))));
    }
}

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
