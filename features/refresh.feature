Feature: Session refresh
  Clients keep the RCC dialog alive: OC 2007 re-INVITEs, OC 2007 R2 and Lync send UPDATE, pidgin-sipe
  re-INVITEs and then restarts its CSeq at 1. The gateway answers each without a new session.

  @needs-pbx-sim
  Scenario Outline: <profile> refreshes and keeps working
    Given bob is signed in with <profile>
    When bob refreshes the session
    Then the gateway answers bob's refresh
    And the gateway holds 1 session and 1 PBX monitor
    When bob dials alice
    Then alice's desk phone rings
    And bob saw no protocol violations

    Examples:
      | profile  |
      | lync2013 |
      | oc2007   |
      | oc2007r2 |
      | sipe     |
