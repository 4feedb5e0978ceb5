#pragma once

#include "datasets/datasetjobs.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSlider;
class QSortFilterProxyModel;
class QSplitter;
class QStackedWidget;
class QTabBar;
class QTabWidget;
class QTableView;
class QToolButton;
class QVBoxLayout;

namespace ifs {

class Settings;

class ClassChart;
class ClassTableModel;
class ElidedLabel;
class HealthPanel;
class ImageDetailsPanel;
class ThumbnailModel;
class ThumbnailView;
class WarningBanner;

/// The Datasets workspace: what torchvision makes of a folder (classes, class_to_idx, counts,
/// samples), thumbnails, image details, warnings, split agreement and the health check.
class DatasetsWorkspace : public QWidget
{
    Q_OBJECT

public:
    explicit DatasetsWorkspace(Settings *settings, QWidget *parent = nullptr);
    ~DatasetsWorkspace() override;

    /// Scans `root` in the background; the views fill in as the scan streams.
    void openDataset(const QString &root);
    void rescan();
    void closeDataset();
    void cancelScan();

    bool hasDataset() const { return !m_root.isEmpty(); }
    bool isScanning() const;
    QString datasetRoot() const { return m_root; }
    const DatasetScan &scan() const { return m_scan; }
    /// The split on show ("" for a plain root).
    QString currentSplit() const { return m_split; }
    void setCurrentSplit(const QString &split);
    IndexPtr currentIndex() const { return m_scan.index(m_split); }
    /// Shows the images of one class; -1 shows all.
    void selectClass(int classIndex);
    int selectedClass() const { return m_selectedClass; }
    void startHealthCheck();
    /// Shows one file of the dataset (found in any split) in the details panel.
    void showFile(const QString &absolutePath);
    /// Asks for a file name and writes class_to_idx as JSON.
    void exportClassToIdx();
    void setRecentDatasets(const QStringList &recent);
    void saveState();

    // Widgets reached by tests and screenshots.
    QTableView *classTable() const { return m_classTable; }
    ThumbnailView *thumbnailView() const { return m_thumbnails; }
    ThumbnailModel *thumbnailModel() const { return m_thumbnailModel; }
    ClassTableModel *classModel() const { return m_classModel; }
    WarningBanner *banner() const { return m_banner; }
    QListWidget *warningList() const { return m_warningList; }
    HealthPanel *healthPanel() const { return m_health; }
    ImageDetailsPanel *detailsPanel() const { return m_details; }
    QTabWidget *contentTabs() const { return m_contentTabs; }

Q_SIGNALS:
    void datasetOpened(const QString &root);
    void scanFinished();
    void scanFailed(const QString &message);
    void statusMessage(const QString &message);
    void openFolderRequested();
    void openSampleRequested();
    void openRecentRequested(const QString &path);
    /// The imbalance finding's remedy: train with balanced class weights.
    void trainBalancedRequested();

private:
    QWidget *buildEmptyPage();
    QWidget *buildDatasetPage();
    /// Name, path, scan progress and actions above the split tabs and the summary.
    QVBoxLayout *buildHeader(QWidget *page);
    /// The class table, the class chart and the findings, one above the other.
    QWidget *buildClassesPane(QWidget *page);
    void buildClassTable(QWidget *left);
    /// The thumbnails with their bar (title, Show All Classes, size).
    QWidget *buildImagesPage(QWidget *page);
    void showScanProgress(bool scanning);
    void onLayoutDetected(const DatasetLayout &layout);
    void onClassesFound(const QString &split, const QStringList &classes);
    void onCountsChanged(const QString &split, const std::vector<int64_t> &counts);
    void onScanFinished(const DatasetScan &scan);
    void onScanFailed(const QString &message);
    void showSplit(const QString &split);
    void updateSummary();
    void updateWarnings();
    void showClassImages(int classIndex);
    void onClassSelectionChanged();

    Settings *m_settings;
    DatasetScanJob m_job;
    DatasetScan m_scan;
    QString m_root;
    QString m_split;
    int m_selectedClass = -1;

    QStackedWidget *m_pages;
    QLabel *m_recentLabel = nullptr;
    QListWidget *m_recentList;
    // Header
    QLabel *m_title;
    QLabel *m_path;
    QLabel *m_summary;
    QTabBar *m_splitTabs;
    QProgressBar *m_scanProgress;
    QPushButton *m_cancelScan;
    QPushButton *m_healthButton;
    QPushButton *m_exportButton;
    WarningBanner *m_banner;
    // Classes
    ClassTableModel *m_classModel;
    QSortFilterProxyModel *m_classProxy;
    QLineEdit *m_classFilter;
    QTableView *m_classTable;
    ClassChart *m_chart;
    QListWidget *m_warningList;
    QPushButton *m_trainBalanced; ///< shown with an imbalance finding
    // Images
    QTabWidget *m_contentTabs;
    ElidedLabel *m_imagesTitle;
    QToolButton *m_showAll;
    QSlider *m_thumbSize;
    ThumbnailModel *m_thumbnailModel;
    ThumbnailView *m_thumbnails;
    ImageDetailsPanel *m_details;
    HealthPanel *m_health;
    QSplitter *m_mainSplitter;
    QSplitter *m_leftSplitter;
};

} // namespace ifs
