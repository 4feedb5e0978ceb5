#include "datasets/datasetsworkspace.h"

#include "base/settings.h"
#include "common/compactsortheader.h"
#include "common/elidedlabel.h"
#include "common/emptystatepage.h"
#include "common/icons.h"
#include "common/warningbanner.h"
#include "datasets/classchart.h"
#include "datasets/classtablemodel.h"
#include "datasets/healthpanel.h"
#include "datasets/imagedetailspanel.h"
#include "datasets/thumbnailmodel.h"
#include "datasets/thumbnailview.h"

#include <QApplication>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QLocale>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSlider>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStackedWidget>
#include <QStyle>
#include <QTabBar>
#include <QTabWidget>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

namespace ifs {

namespace {

QLabel *sectionLabel(const QString &text, QWidget *parent)
{
    auto *label = new QLabel(text, parent);
    QFont font = label->font();
    font.setBold(true);
    label->setFont(font);
    return label;
}

QString splitTitle(const QString &split)
{
    return split.isEmpty() ? QObject::tr("All") : split;
}

} // namespace

DatasetsWorkspace::DatasetsWorkspace(Settings *settings, QWidget *parent)
    : QWidget(parent)
    , m_settings(settings)
    , m_pages(new QStackedWidget(this))
{
    setObjectName(QStringLiteral("datasetsWorkspace"));
    m_pages->addWidget(buildEmptyPage());
    m_pages->addWidget(buildDatasetPage());
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_pages);

    connect(&m_job, &DatasetScanJob::layoutDetected, this, &DatasetsWorkspace::onLayoutDetected);
    connect(&m_job, &DatasetScanJob::classesFound, this, &DatasetsWorkspace::onClassesFound);
    connect(&m_job, &DatasetScanJob::countsChanged, this, &DatasetsWorkspace::onCountsChanged);
    connect(&m_job, &DatasetScanJob::finished, this, &DatasetsWorkspace::onScanFinished);
    connect(&m_job, &DatasetScanJob::failed, this, &DatasetsWorkspace::onScanFailed);
    connect(&m_job, &DatasetScanJob::cancelled, this, [this] {
        showScanProgress(false);
        m_banner->showMessage(WarningBanner::Level::Info,
                              tr("Scan cancelled. The counts shown are incomplete."),
                              tr("Scan Again"));
        Q_EMIT statusMessage(tr("Scan cancelled"));
    });
    connect(m_banner, &WarningBanner::actionTriggered, this, &DatasetsWorkspace::rescan);
}

DatasetsWorkspace::~DatasetsWorkspace() = default;

QWidget *DatasetsWorkspace::buildEmptyPage()
{
    auto *page = new EmptyStatePage(QStringLiteral("ifstudio"), tr("Open an image folder"),
                                    tr("A folder laid out like torchvision's ImageFolder: "
                                       "<tt>root/&lt;class&gt;/&lt;image&gt;</tt>, or with "
                                       "<tt>train/</tt> and <tt>val/</tt> splits.<br>"
                                       "Drop a folder anywhere on this window."),
                                    this);
    page->setObjectName(QStringLiteral("emptyPage"));
    page->openButton()->setObjectName(QStringLiteral("openFolderButton"));
    page->openButton()->setDefault(true);
    page->sampleButton()->setObjectName(QStringLiteral("openSampleButton"));
    connect(page, &EmptyStatePage::openFolderRequested, this,
            &DatasetsWorkspace::openFolderRequested);
    connect(page, &EmptyStatePage::openSampleRequested, this,
            &DatasetsWorkspace::openSampleRequested);

    m_recentList = new QListWidget(page);
    m_recentList->setObjectName(QStringLiteral("recentList"));
    m_recentList->setMaximumHeight(160);
    m_recentList->setMinimumWidth(560);
    m_recentList->setTextElideMode(Qt::ElideMiddle);
    m_recentList->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    connect(m_recentList, &QListWidget::itemActivated, this, [this](QListWidgetItem *item) {
        Q_EMIT openRecentRequested(item->data(Qt::UserRole).toString());
    });
    m_recentLabel = sectionLabel(tr("Recent datasets"), page);
    page->addBelow(m_recentLabel);
    page->addBelow(m_recentList, 0);
    return page;
}

QWidget *DatasetsWorkspace::buildDatasetPage()
{
    auto *page = new QWidget(this);

    QVBoxLayout *header = buildHeader(page);
    m_banner = new WarningBanner(page);

    // Left: class table, chart, warnings. Centre: thumbnails and the health report.
    QWidget *left = buildClassesPane(page);
    QWidget *imagesPage = buildImagesPage(page);

    m_health = new HealthPanel(page);
    m_contentTabs = new QTabWidget(page);
    m_contentTabs->setObjectName(QStringLiteral("contentTabs"));
    m_contentTabs->setDocumentMode(true);
    m_contentTabs->addTab(imagesPage, tr("Images"));
    m_contentTabs->addTab(m_health, tr("Health"));

    // Right: the selected image.
    m_details = new ImageDetailsPanel(page);
    m_details->setMinimumWidth(220);

    connect(m_thumbnails, &ThumbnailView::currentSampleChanged, this, [this](int sampleRow) {
        if (sampleRow >= 0)
            m_details->showSample(currentIndex(), sampleRow);
        else
            m_details->clear();
    });
    connect(m_health, &HealthPanel::statusMessage, this, &DatasetsWorkspace::statusMessage);
    connect(m_health, &HealthPanel::fileActivated, this, &DatasetsWorkspace::showFile);
    auto indexIsStale = [this](const QStringList &paths) {
        m_banner->showMessage(WarningBanner::Level::Info,
                              tr("%n file(s) moved. Rescan to update the classes and counts.",
                                 nullptr, int(paths.size())),
                              tr("Rescan"));
    };
    connect(m_health, &HealthPanel::filesQuarantined, this, indexIsStale);
    connect(m_health, &HealthPanel::quarantineUndone, this, indexIsStale);

    m_mainSplitter = new QSplitter(Qt::Horizontal, page);
    m_mainSplitter->setObjectName(QStringLiteral("datasetsSplitter"));
    m_mainSplitter->addWidget(left);
    m_mainSplitter->addWidget(m_contentTabs);
    m_mainSplitter->addWidget(m_details);
    m_mainSplitter->setStretchFactor(0, 2);
    m_mainSplitter->setStretchFactor(1, 5);
    m_mainSplitter->setStretchFactor(2, 2);
    m_mainSplitter->setSizes({320, 700, 300});
    m_mainSplitter->setChildrenCollapsible(false);
    if (const QByteArray state = m_settings->splitterState(QStringLiteral("datasets"));
        !state.isEmpty())
        m_mainSplitter->restoreState(state);

    auto *layout = new QVBoxLayout(page);
    layout->setContentsMargins(10, 8, 10, 4);
    layout->addLayout(header);
    layout->addWidget(m_banner);
    layout->addWidget(m_mainSplitter, 1);
    showScanProgress(false);
    return page;
}

QVBoxLayout *DatasetsWorkspace::buildHeader(QWidget *page)
{
    m_title = new QLabel(page);
    m_title->setObjectName(QStringLiteral("datasetTitle"));
    QFont titleFont = m_title->font();
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.35);
    titleFont.setBold(true);
    m_title->setFont(titleFont);
    m_path = new QLabel(page);
    m_path->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_path->setStyleSheet(QStringLiteral("color: palette(mid);"));
    m_summary = new QLabel(page);
    m_summary->setObjectName(QStringLiteral("datasetSummary"));
    m_splitTabs = new QTabBar(page);
    m_splitTabs->setObjectName(QStringLiteral("splitTabs"));
    m_splitTabs->setDrawBase(false);
    m_splitTabs->setExpanding(false);
    connect(m_splitTabs, &QTabBar::currentChanged, this, [this](int tab) {
        if (tab >= 0)
            showSplit(m_splitTabs->tabData(tab).toString());
    });
    m_scanProgress = new QProgressBar(page);
    m_scanProgress->setRange(0, 0);
    m_scanProgress->setMaximumWidth(220);
    m_scanProgress->setTextVisible(false);
    m_cancelScan = new QPushButton(tr("Cancel"), page);
    connect(m_cancelScan, &QPushButton::clicked, this, &DatasetsWorkspace::cancelScan);
    m_healthButton = new QPushButton(tr("Check Health"), page);
    m_healthButton->setToolTip(tr("Decode every image as torchvision's loader would and list "
                                  "what would break training"));
    connect(m_healthButton, &QPushButton::clicked, this, &DatasetsWorkspace::startHealthCheck);
    m_exportButton = new QPushButton(tr("Export class_to_idx…"), page);
    m_exportButton->setToolTip(tr("Save class_to_idx as JSON for your Python scripts"));
    connect(m_exportButton, &QPushButton::clicked, this, &DatasetsWorkspace::exportClassToIdx);

    auto *titleColumn = new QVBoxLayout;
    titleColumn->setSpacing(0);
    titleColumn->addWidget(m_title);
    titleColumn->addWidget(m_path);
    auto *header = new QHBoxLayout;
    header->addLayout(titleColumn, 1);
    header->addWidget(m_scanProgress);
    header->addWidget(m_cancelScan);
    header->addSpacing(12);
    header->addWidget(m_healthButton);
    header->addWidget(m_exportButton);
    auto *subHeader = new QHBoxLayout;
    subHeader->addWidget(m_splitTabs);
    subHeader->addSpacing(8);
    subHeader->addWidget(m_summary, 1);
    auto *rows = new QVBoxLayout;
    rows->addLayout(header);
    rows->addLayout(subHeader);
    return rows;
}

QWidget *DatasetsWorkspace::buildClassesPane(QWidget *page)
{
    auto *left = new QWidget(page);
    buildClassTable(left);

    m_chart = new ClassChart(left);
    connect(m_chart, &ClassChart::classClicked, this, &DatasetsWorkspace::selectClass);

    m_warningList = new QListWidget(left);
    m_warningList->setObjectName(QStringLiteral("warningList"));
    m_warningList->setWordWrap(true);
    m_warningList->setSelectionMode(QAbstractItemView::NoSelection);
    m_warningList->setTextElideMode(Qt::ElideNone);

    auto *classBox = new QWidget(left);
    auto *classLayout = new QVBoxLayout(classBox);
    classLayout->setContentsMargins(0, 0, 0, 0);
    classLayout->addWidget(sectionLabel(tr("Classes"), classBox));
    classLayout->addWidget(m_classFilter);
    classLayout->addWidget(m_classTable);
    auto *warningBox = new QWidget(left);
    auto *warningLayout = new QVBoxLayout(warningBox);
    warningLayout->setContentsMargins(0, 0, 0, 0);
    warningLayout->addWidget(sectionLabel(tr("Findings"), warningBox));
    warningLayout->addWidget(m_warningList);
    m_trainBalanced = new QPushButton(tr("Train with Balanced Class Weights"), warningBox);
    m_trainBalanced->setObjectName(QStringLiteral("trainBalancedButton"));
    m_trainBalanced->setToolTip(tr("Opens the Training workspace with the loss weighted by "
                                   "N / (C × n_c), so that rare classes count as much as "
                                   "common ones"));
    m_trainBalanced->hide();
    connect(m_trainBalanced, &QPushButton::clicked, this,
            &DatasetsWorkspace::trainBalancedRequested);
    warningLayout->addWidget(m_trainBalanced);
    m_leftSplitter = new QSplitter(Qt::Vertical, left);
    m_leftSplitter->addWidget(classBox);
    m_leftSplitter->addWidget(m_chart);
    m_leftSplitter->addWidget(warningBox);
    m_leftSplitter->setStretchFactor(0, 3);
    m_leftSplitter->setStretchFactor(1, 2);
    m_leftSplitter->setStretchFactor(2, 1);
    left->setMinimumWidth(260); // class names, counts and the chart stay readable
    auto *leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addWidget(m_leftSplitter);
    return left;
}

void DatasetsWorkspace::buildClassTable(QWidget *left)
{
    m_classModel = new ClassTableModel(this);
    m_classProxy = new QSortFilterProxyModel(this);
    m_classProxy->setSourceModel(m_classModel);
    m_classProxy->setSortRole(ClassTableModel::SortRole);
    m_classProxy->setFilterKeyColumn(ClassTableModel::NameColumn);
    m_classProxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_classFilter = new QLineEdit(left);
    m_classFilter->setObjectName(QStringLiteral("classFilter"));
    m_classFilter->setPlaceholderText(tr("Filter classes"));
    m_classFilter->setClearButtonEnabled(true);
    connect(m_classFilter, &QLineEdit::textChanged, m_classProxy,
            &QSortFilterProxyModel::setFilterFixedString);
    m_classTable = new QTableView(left);
    m_classTable->setObjectName(QStringLiteral("classTable"));
    // The numbers are short: the header keeps room for the sort arrow only where it shows, and
    // the class names (stretched) get the rest.
    m_classTable->setHorizontalHeader(new CompactSortHeader(Qt::Horizontal, m_classTable));
    m_classTable->setModel(m_classProxy);
    m_classTable->setSortingEnabled(true);
    m_classTable->sortByColumn(ClassTableModel::IndexColumn, Qt::AscendingOrder);
    m_classTable->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_classTable->setSelectionMode(QAbstractItemView::SingleSelection);
    m_classTable->setAlternatingRowColors(true);
    m_classTable->verticalHeader()->hide();
    m_classTable->verticalHeader()->setDefaultSectionSize(m_classTable->fontMetrics().height() + 8);
    m_classTable->horizontalHeader()->setSectionResizeMode(ClassTableModel::NameColumn,
                                                           QHeaderView::Stretch);
    for (int column :
         {ClassTableModel::IndexColumn, ClassTableModel::CountColumn, ClassTableModel::ShareColumn})
        m_classTable->horizontalHeader()->setSectionResizeMode(column,
                                                               QHeaderView::ResizeToContents);
    m_classTable->setWordWrap(false);
    connect(m_classTable->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            &DatasetsWorkspace::onClassSelectionChanged);
}

QWidget *DatasetsWorkspace::buildImagesPage(QWidget *page)
{
    auto *imagesPage = new QWidget(page);
    // A long class name shortens here instead of pushing the buttons over it.
    m_imagesTitle = new ElidedLabel(imagesPage);
    m_imagesTitle->setElideMode(Qt::ElideRight);
    m_imagesTitle->setObjectName(QStringLiteral("imagesTitle"));
    m_showAll = new QToolButton(imagesPage);
    m_showAll->setText(tr("Show All Classes"));
    m_showAll->setAutoRaise(true);
    connect(m_showAll, &QToolButton::clicked, this, [this] { selectClass(-1); });
    m_thumbSize = new QSlider(Qt::Horizontal, imagesPage);
    m_thumbSize->setRange(48, 320);
    m_thumbSize->setValue(m_settings->thumbnailSize());
    m_thumbSize->setMaximumWidth(140);
    m_thumbSize->setMinimumWidth(80);
    m_thumbSize->setToolTip(tr("Thumbnail size"));
    m_thumbnailModel = new ThumbnailModel(this);
    m_thumbnails = new ThumbnailView(imagesPage);
    m_thumbnails->setObjectName(QStringLiteral("thumbnailView"));
    m_thumbnails->setModel(m_thumbnailModel);
    m_thumbnails->setThumbnailSize(m_settings->thumbnailSize());
    connect(m_thumbSize, &QSlider::valueChanged, this, [this](int size) {
        m_thumbnails->setThumbnailSize(size); // forwards device pixels to the model
        m_settings->setThumbnailSize(size);
    });
    auto *imagesBar = new QHBoxLayout;
    imagesBar->addWidget(m_imagesTitle, 1);
    imagesBar->addWidget(m_showAll);
    imagesBar->addWidget(new QLabel(tr("Size"), imagesPage));
    imagesBar->addWidget(m_thumbSize);
    auto *imagesLayout = new QVBoxLayout(imagesPage);
    imagesLayout->setContentsMargins(0, 4, 0, 0);
    imagesLayout->addLayout(imagesBar);
    imagesLayout->addWidget(m_thumbnails);
    return imagesPage;
}

void DatasetsWorkspace::saveState()
{
    m_settings->setSplitterState(QStringLiteral("datasets"), m_mainSplitter->saveState());
}

void DatasetsWorkspace::setRecentDatasets(const QStringList &recent)
{
    m_recentList->clear();
    for (const QString &path : recent) {
        auto *item = new QListWidgetItem(
            themedIcon(QStringLiteral("folder")),
            QFileInfo(path).fileName() + QStringLiteral("  —  ") + path, m_recentList);
        item->setData(Qt::UserRole, path);
        item->setToolTip(path);
    }
    m_recentList->setVisible(!recent.isEmpty());
    m_recentLabel->setVisible(!recent.isEmpty());
}

bool DatasetsWorkspace::isScanning() const
{
    return m_job.isRunning();
}

void DatasetsWorkspace::openDataset(const QString &root)
{
    const QFileInfo info(root);
    if (!info.isDir()) {
        const QString message = info.exists()
            ? tr("“%1” is a file. Open the folder that holds one sub-folder per "
                 "class.")
                  .arg(root)
            : tr("The folder “%1” does not exist.").arg(root);
        Q_EMIT scanFailed(message);
        return;
    }
    m_root = QDir::cleanPath(info.absoluteFilePath());
    m_scan = {};
    m_split.clear();
    m_selectedClass = -1;
    m_banner->dismiss();
    m_classModel->clear();
    m_chart->clear();
    m_warningList->clear();
    m_trainBalanced->hide();
    m_thumbnailModel->clear();
    m_details->clear();
    m_title->setText(QFileInfo(m_root).fileName().isEmpty() ? m_root
                                                            : QFileInfo(m_root).fileName());
    m_path->setText(m_root);
    m_summary->setText(tr("Scanning…"));
    m_pages->setCurrentIndex(1);
    showScanProgress(true);
    Q_EMIT statusMessage(tr("Scanning %1…").arg(m_root));
    ScanOptions options;
    options.allowEmpty = true; // show empty classes; the refusal is still reported
    m_job.start(m_root, options);
}

void DatasetsWorkspace::rescan()
{
    if (hasDataset())
        openDataset(m_root);
}

void DatasetsWorkspace::closeDataset()
{
    cancelScan();
    m_root.clear();
    m_scan = {};
    m_thumbnailModel->clear();
    m_details->clear();
    m_pages->setCurrentIndex(0);
}

void DatasetsWorkspace::cancelScan()
{
    m_job.requestCancel();
}

void DatasetsWorkspace::showScanProgress(bool scanning)
{
    m_scanProgress->setVisible(scanning);
    m_cancelScan->setVisible(scanning);
    m_healthButton->setEnabled(!scanning && hasDataset());
    m_exportButton->setEnabled(!scanning && hasDataset());
}

void DatasetsWorkspace::onLayoutDetected(const DatasetLayout &layout)
{
    while (m_splitTabs->count() > 0)
        m_splitTabs->removeTab(0);
    const QStringList splits = layout.hasSplits() ? layout.splits : QStringList{QString()};
    QSignalBlocker blocker(m_splitTabs);
    for (const QString &split : splits) {
        const int tab = m_splitTabs->addTab(splitTitle(split));
        m_splitTabs->setTabData(tab, split);
    }
    m_splitTabs->setVisible(layout.hasSplits());
    m_split = splits.constFirst();
}

void DatasetsWorkspace::onClassesFound(const QString &split, const QStringList &classes)
{
    if (split != m_split)
        return;
    m_classModel->setClasses(classes);
    m_chart->setClasses(classes, std::vector<int64_t>(size_t(classes.size()), 0));
}

void DatasetsWorkspace::onCountsChanged(const QString &split, const std::vector<int64_t> &counts)
{
    if (split != m_split)
        return;
    m_classModel->setCounts(counts);
    m_chart->setCounts(counts);
    int64_t total = 0;
    for (int64_t n : counts)
        total += n;
    m_summary->setText(tr("Scanning %1 · %2 classes · %3 images so far")
                           .arg(splitTitle(split))
                           .arg(counts.size())
                           .arg(QLocale().toString(qlonglong(total))));
}

void DatasetsWorkspace::onScanFinished(const DatasetScan &scan)
{
    m_scan = scan;
    showScanProgress(false);
    if (!m_scan.mismatches.isEmpty()) {
        QStringList messages;
        for (const SplitMismatch &mismatch : std::as_const(m_scan.mismatches))
            messages.append(mismatch.message());
        m_banner->showMessage(WarningBanner::Level::Error, messages.join(u'\n'));
    }
    QList<QPair<QString, IndexPtr>> targets;
    for (const QString &split : std::as_const(m_scan.splits))
        targets.append({split, m_scan.index(split)});
    m_health->setDataset(m_root, targets);
    showSplit(m_split);
    Q_EMIT statusMessage(tr("Scanned %1").arg(m_root));
    Q_EMIT datasetOpened(m_root);
    Q_EMIT scanFinished();
}

void DatasetsWorkspace::onScanFailed(const QString &message)
{
    showScanProgress(false);
    closeDataset();
    Q_EMIT statusMessage(message);
    Q_EMIT scanFailed(message);
}

void DatasetsWorkspace::setCurrentSplit(const QString &split)
{
    for (int tab = 0; tab < m_splitTabs->count(); ++tab) {
        if (m_splitTabs->tabData(tab).toString() == split) {
            m_splitTabs->setCurrentIndex(tab);
            showSplit(split);
            return;
        }
    }
}

void DatasetsWorkspace::showSplit(const QString &split)
{
    m_split = split;
    const IndexPtr index = currentIndex();
    if (!index)
        return;
    m_classModel->setClasses(index->classes);
    m_classModel->setCounts(index->counts);
    m_chart->setClasses(index->classes, index->counts);
    updateWarnings();
    updateSummary();
    selectClass(-1);
}

void DatasetsWorkspace::updateSummary()
{
    const IndexPtr index = currentIndex();
    if (!index)
        return;
    const QLocale locale;
    QString text = tr("%1 classes · %2 images")
                       .arg(index->classCount())
                       .arg(locale.toString(qlonglong(index->sampleCount())));
    if (m_scan.splits.size() > 1) {
        QStringList parts;
        for (const QString &split : std::as_const(m_scan.splits))
            parts.append(QStringLiteral("%1 %2").arg(
                split, locale.toString(qlonglong(m_scan.index(split)->sampleCount()))));
        text += QStringLiteral("  (") + parts.join(QStringLiteral(", ")) + u')';
    }
    m_summary->setText(text);
}

void DatasetsWorkspace::updateWarnings()
{
    m_warningList->clear();
    m_trainBalanced->hide();
    const IndexPtr index = currentIndex();
    if (!index)
        return;
    QList<DatasetWarning> warnings = analyseDataset(*index);
    for (const SplitMismatch &mismatch : std::as_const(m_scan.mismatches))
        warnings.prepend({DatasetWarning::Kind::SplitMismatch, DatasetWarning::Severity::Error,
                          mismatch.message(), mismatch.onlyInFirst + mismatch.onlyInSecond});

    QHash<QString, QString> classWarnings;
    for (const DatasetWarning &warning : std::as_const(warnings)) {
        QStyle::StandardPixmap pixmap = QStyle::SP_MessageBoxInformation;
        if (warning.severity == DatasetWarning::Severity::Warning)
            pixmap = QStyle::SP_MessageBoxWarning;
        else if (warning.severity == DatasetWarning::Severity::Error)
            pixmap = QStyle::SP_MessageBoxCritical;
        auto *item
            = new QListWidgetItem(style()->standardIcon(pixmap), warning.message, m_warningList);
        item->setData(Qt::UserRole, int(warning.kind));
        if (warning.kind == DatasetWarning::Kind::Imbalance)
            m_trainBalanced->show();
        for (const QString &name : warning.classes) {
            if (warning.kind != DatasetWarning::Kind::Imbalance)
                classWarnings.insert(name, warning.message);
        }
    }
    if (warnings.isEmpty()) {
        auto *item = new QListWidgetItem(style()->standardIcon(QStyle::SP_DialogApplyButton),
                                         tr("torchvision's ImageFolder accepts this folder as it "
                                            "is. No hidden, empty or misordered classes."),
                                         m_warningList);
        item->setData(Qt::UserRole, -1);
    }
    m_classModel->setClassWarnings(classWarnings);
    if (!index->refusal.isEmpty() && m_scan.mismatches.isEmpty())
        m_banner->showMessage(WarningBanner::Level::Error, index->refusal);
}

void DatasetsWorkspace::selectClass(int classIndex)
{
    const IndexPtr index = currentIndex();
    if (!index)
        return;
    if (classIndex >= index->classCount())
        classIndex = -1;
    if (classIndex < 0) {
        QSignalBlocker blocker(m_classTable->selectionModel());
        m_classTable->clearSelection();
    } else {
        const QModelIndex source = m_classModel->index(classIndex, ClassTableModel::NameColumn);
        const QModelIndex proxy = m_classProxy->mapFromSource(source);
        if (proxy.isValid()) {
            QSignalBlocker blocker(m_classTable->selectionModel());
            m_classTable->selectionModel()->select(
                proxy, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
            m_classTable->scrollTo(proxy);
        }
    }
    showClassImages(classIndex);
}

void DatasetsWorkspace::onClassSelectionChanged()
{
    const QModelIndexList rows = m_classTable->selectionModel()->selectedRows();
    const int classIndex
        = rows.isEmpty() ? -1 : rows.constFirst().data(ClassTableModel::ClassIndexRole).toInt();
    showClassImages(classIndex);
}

void DatasetsWorkspace::showClassImages(int classIndex)
{
    const IndexPtr index = currentIndex();
    if (!index)
        return;
    m_selectedClass = classIndex;
    std::vector<int> rows;
    if (classIndex < 0) {
        rows.resize(index->samples.size());
        for (size_t i = 0; i < rows.size(); ++i)
            rows[i] = int(i);
    } else {
        rows = ThumbnailModel::sampleRowsOfClass(*index, classIndex);
    }
    const QLocale locale;
    m_imagesTitle->setText(
        classIndex < 0 ? tr("All classes · %1 images").arg(locale.toString(qlonglong(rows.size())))
                       : tr("%1 (index %2) · %3 images")
                             .arg(index->classes[classIndex])
                             .arg(classIndex)
                             .arg(locale.toString(qlonglong(rows.size()))));
    m_showAll->setVisible(classIndex >= 0);
    m_chart->setHighlightedClass(classIndex);
    m_thumbnailModel->setDataset(index, std::move(rows));
    m_details->clear();
    m_contentTabs->setCurrentIndex(0);
}

void DatasetsWorkspace::showFile(const QString &absolutePath)
{
    for (const QString &split : std::as_const(m_scan.splits)) {
        const IndexPtr index = m_scan.index(split);
        for (size_t row = 0; index && row < index->samples.size(); ++row) {
            if (index->absolutePath(index->samples[row]) == absolutePath) {
                m_details->showSample(index, int(row));
                return;
            }
        }
    }
}

void DatasetsWorkspace::startHealthCheck()
{
    if (!hasDataset() || isScanning())
        return;
    m_contentTabs->setCurrentWidget(m_health);
    if (!m_health->isRunning())
        m_health->start();
}

void DatasetsWorkspace::exportClassToIdx()
{
    const IndexPtr index = currentIndex();
    if (!index)
        return;
    const QString suggested = QDir(m_root).filePath(QStringLiteral("class_to_idx.json"));
    const QString path = QFileDialog::getSaveFileName(this, tr("Export class_to_idx"), suggested,
                                                      tr("JSON (*.json)"));
    if (path.isEmpty())
        return;
    const Status saved = saveClassToIdx(*index, path);
    if (!saved) {
        QMessageBox::warning(this, tr("Export class_to_idx"), saved.errorMessage());
        return;
    }
    Q_EMIT statusMessage(
        tr("Saved class_to_idx (%1 classes) to %2").arg(index->classCount()).arg(path));
}

} // namespace ifs
